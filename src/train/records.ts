/**
 * The records of a training run: its configuration, what each step and epoch report (and
 * metrics.jsonl holds), and what a checkpoint carries besides the weights (where the run is,
 * the metrics so far). Data only, so the trainer, the checkpoint codec and the validation of
 * what is read back can all use them without importing each other.
 */
import type { RandomState } from "../random.ts";
import type { NonFinitePolicy } from "./divergence.ts";
import type { OptimizerSettings } from "../optim/build.ts";

export interface TrainConfig {
  epochs: number;
  /** Stop after this many optimiser steps in total (0: no limit). */
  steps: number;
  batchSize: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: "constant" | "step" | "cosine";
  /** Linear warm-up length in epochs (fractions allowed; at most a quarter of the run). */
  warmup: number;
  powerGrad: number;
  labelSmoothing: number;
  seed: number;
  shuffle: boolean;
  augment: "none" | "standard";
  /** Per-channel normalisation of pixel/255. */
  mean: number[];
  std: number[];
  evalBatchSize: number;
  /**
   * A step with a non-finite loss or gradient norm: "stop" (default) raises a DivergenceError,
   * "skip" leaves the weights as they are and counts the step.
   */
  onNonFinite?: NonFinitePolicy;
  /** The optimiser and its clipping and EMA (absent: SGD with lr, momentum, nesterov, weightDecay). */
  optimizer?: OptimizerSettings;
}

export interface StepRecord {
  type: "step";
  epoch: number;
  batch: number;
  batches: number;
  batchSize: number;
  step: number;
  lr: number;
  loss: number;
  /** Global gradient norm (√Σ‖g‖² over every parameter) before the update. */
  gradNorm: number;
  /** The update was skipped: a non-finite loss or gradient norm under onNonFinite "skip". */
  skipped: boolean;
  /** Running training accuracy over the epoch's applied steps so far. */
  accuracy: number;
  imagesPerSec: number;
}

export interface EpochRecord {
  type: "epoch";
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  /** Steps of this epoch whose update was skipped (not in trainLoss and trainAccuracy). */
  skippedSteps: number;
  seconds: number;
  imagesPerSec: number;
  /** What `TrainCallbacks.measureEpoch` added (absent without it); kept in checkpoints. */
  measures?: Record<string, number>;
}

export interface TrainingPosition {
  /** Completed epochs. */
  epoch: number;
  /** Batches completed within the current epoch (0 at an epoch boundary). */
  batchInEpoch: number;
  /** Optimiser steps taken in total. */
  step: number;
  rngAtEpochStart: RandomState;
  rngNow: RandomState;
}

/** What a checkpoint carries besides the weights: the config and the metrics so far. */
export interface TrainingProgress {
  config: TrainConfig;
  history: EpochRecord[];
  /** Sums over the epoch in progress, so an interrupted epoch's metrics stay exact. */
  epochSums: { loss: number; correct: number; seen: number; skipped: number };
}
