/**
 * The training loop behind `retrograd train` (and the browser demo): epochs of seeded,
 * optionally augmented batches, an optimiser (the config's, SGD by default, unless the caller
 * brings another) with a per-step learning-rate schedule, cross-entropy
 * with optional PowerGrad and label smoothing, a test-set evaluation after every epoch,
 * and checkpoints that resume to exactly the run that was interrupted (same weights, same
 * metrics). A step whose loss or gradient is not finite is never applied (divergence.ts).
 * With `config.dither` the model backpropagates with dithered gradients (nn/dither.ts) and
 * every step and epoch record carries the sparsity they reached per layer.
 * Probes (src/analysis/) may measure chosen steps; they never change the run.
 * Runtime-free: progress, files and signals are the caller's, through callbacks.
 */
import type { Module } from "../nn/module.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import { createOptimizer } from "../optim/build.ts";
import * as schedules from "../optim/schedule.ts";
import { crossEntropy } from "../ops/loss.ts";
import { noGrad } from "../autograd.ts";
import { tidy, type Tensor } from "../tensor.ts";
import { getRandomState, manualSeed, setRandomState } from "../random.ts";
import { DataLoader } from "../data/loader.ts";
import type { Dataset } from "../data/dataset.ts";
import { ValueError } from "../errors.ts";
import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
import type { EpochRecord, StepRecord, TrainConfig, TrainingPosition, TrainingProgress } from "./records.ts";
import { DivergenceGuard, gradNormSquared } from "./divergence.ts";
import { checkPosition, readProgress } from "./validate.ts";
import { Fields } from "../io/fields.ts";
import { DitheredBackprop } from "../nn/dither.ts";
import type { ProbedStep } from "../analysis/probed_step.ts";
import { disposeParams, snapshotParameters } from "../analysis/param_maps.ts";

/** Sees the logits of one evaluation batch ([N, C] row-major), read back, with its labels. */
export type LogitsObserver = (logits: Float32Array, classes: number, labels: Int32Array) => void;

/** Measures chosen steps (rg.analysis.Prober does): see TrainCallbacks.probe. */
export interface StepProbe {
  /** Is step `step` (1-based) to be measured? Asked before the step, so its weights before the update can be kept. */
  due(step: number): boolean;
  /** Measure the step just taken: after its update, before onStep. Only applied steps are measured. */
  measure(step: ProbedStep): void | Promise<void>;
}

export interface TrainCallbacks {
  /** After every optimiser step. */
  onStep?(record: StepRecord): void | Promise<void>;
  /** After every epoch's evaluation; `checkpoint()` encodes the state at this point. */
  onEpoch?(record: EpochRecord, checkpoint: () => Promise<Uint8Array>): void | Promise<void>;
  /** Sees every test batch's logits in the evaluation after each epoch (e.g. for logit statistics). */
  onTestLogits?: LogitsObserver;
  /**
   * After each epoch's evaluation, before `onEpoch`: figures to keep in the epoch's record
   * (`measures`), so they are saved and restored with the checkpoint like the metrics.
   */
  measureEpoch?(): Record<string, number> | Promise<Record<string, number>>;
  /** Probes of the backward pass: the step's batch, the random state of its forward pass, the weights before and after. */
  probe?: StepProbe;
  /** Polled between steps (Ctrl-C); when true the loop stops and `onInterrupt` runs. */
  shouldStop?(): boolean;
  onInterrupt?(checkpoint: () => Promise<Uint8Array>): void | Promise<void>;
}

/**
 * Mean loss and accuracy of `model` on `data`, in evaluation mode and without the tape;
 * `onLogits` sees each batch's logits.
 */
export async function evaluate(
  model: Module, data: Dataset, config: Pick<TrainConfig, "evalBatchSize" | "mean" | "std">, onLogits?: LogitsObserver,
) {
  if (data.n === 0) throw new ValueError(`evaluate: no test images (${data.name ?? "the dataset"} is empty)`);
  const loader = new DataLoader(data, { batchSize: config.evalBatchSize, shuffle: false, mean: config.mean, std: config.std });
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0;
  let correct = 0;
  const state = getRandomState(); // evaluation must not move the training stream
  for (const batch of loader.epoch()) {
    const outputs = noGrad(() => tidy(() => {
      const logits = model.forward(batch.x);
      return { logits, loss: crossEntropy(logits, batch.labels, { reduction: "sum" }) };
    }));
    batch.x.dispose();
    const { loss, correct: hits } = await readOutputs(outputs, batch.labels, onLogits);
    lossSum += loss;
    correct += hits;
  }
  setRandomState(state);
  model.train(wasTraining);
  return { loss: lossSum / data.n, accuracy: correct / data.n };
}

/**
 * Read a step's loss (and squared gradient norm, when given) and count correct predictions,
 * in one round of device reads, then free them.
 */
async function readOutputs(
  outputs: { logits: Tensor; loss: Tensor; gradNormSquared?: Tensor | null }, labels: Int32Array, onLogits?: LogitsObserver,
) {
  const [z, loss, normSquared] = await Promise.all([outputs.logits.data(), outputs.loss.data(), outputs.gradNormSquared?.data()]);
  const correct = countCorrect(z, outputs.logits.shape[1], labels);
  onLogits?.(z, outputs.logits.shape[1], labels);
  outputs.logits.dispose();
  outputs.loss.dispose();
  outputs.gradNormSquared?.dispose();
  return { loss: loss[0], correct, gradNormSquared: normSquared?.[0] ?? 0 };
}

function countCorrect(z: Float32Array, classes: number, labels: Int32Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (z[i * classes + c] > z[i * classes + best]) best = c;
    if (best === labels[i]) correct++;
  }
  return correct;
}

/**
 * The learning rate against (fractional) epochs. Its horizon is the run's length: `epochs`,
 * or `steps` converted to epochs when a step budget is set, so a short run still anneals.
 */
export function makeSchedule(config: TrainConfig, batchesPerEpoch: number): schedules.Schedule {
  const horizon = config.steps > 0 ? config.steps / batchesPerEpoch : config.epochs;
  const warm = Math.min(config.warmup, horizon / 4); // a warm-up never takes over a short run
  const span = horizon - warm;
  const main = config.schedule === "cosine"
    ? schedules.cosine(config.lr, span)
    : config.schedule === "step"
    ? schedules.multiStep(config.lr, [0.5 * span, 0.75 * span])
    : schedules.constant(config.lr);
  return warm > 0 ? schedules.warmup(main, warm, 0.1) : main;
}

function defaultOptimizer(model: Module, config: TrainConfig): Optimizer {
  return createOptimizer(model, config.optimizer ?? { name: "sgd" }, config);
}

export class Trainer {
  readonly optimizer: Optimizer;
  readonly loader: DataLoader;
  private position: TrainingPosition;
  private progress: TrainingProgress;
  private readonly schedule: schedules.Schedule;
  private readonly guard: DivergenceGuard;
  /** Dithered backprop's hooks on the model, under `config.dither`. */
  private readonly dither: DitheredBackprop | null;

  /**
   * `optimizer` builds the optimiser over the model (default: the config's `optimizer`, or SGD
   * with its lr, momentum, Nesterov and weight decay); the schedule sets its base rate every step.
   */
  constructor(
    readonly model: Module, readonly trainData: Dataset, readonly testData: Dataset, readonly config: TrainConfig,
    optimizer: (model: Module, config: TrainConfig) => Optimizer = defaultOptimizer,
  ) {
    if (config.epochs < 1 && config.steps < 1) throw new ValueError("train: need epochs ≥ 1 or steps ≥ 1");
    if (testData.n === 0) throw new ValueError(`train: no test images (${testData.name ?? "the test set"} is empty), so no epoch could be evaluated`);
    manualSeed(config.seed);
    this.optimizer = optimizer(model, config);
    this.loader = new DataLoader(trainData, {
      batchSize: config.batchSize, shuffle: config.shuffle, dropLast: true, mean: config.mean, std: config.std,
      augment: config.augment === "standard" ? { crop: Math.round(trainData.height / 8), flip: true } : {},
    });
    this.schedule = makeSchedule(config, this.loader.numBatches);
    this.position = { epoch: 0, batchInEpoch: 0, step: 0, rngAtEpochStart: getRandomState(), rngNow: getRandomState() };
    this.dither = config.dither ? new DitheredBackprop(model, config.dither) : null;
    this.progress = { config, history: [], epochSums: this.emptySums() };
    this.guard = new DivergenceGuard(config.onNonFinite);
  }

  private emptySums(): TrainingProgress["epochSums"] {
    return { loss: 0, correct: 0, seen: 0, skipped: 0, ...(this.dither ? { dither: { steps: 0, sums: {} } } : {}) };
  }

  /** This step's per-layer sparsity under dithered backprop, added to the epoch's sums (null without). */
  private async readDitherSparsity(): Promise<Record<string, number> | null> {
    if (!this.dither) return null;
    const sparsity = await this.dither.readSparsity();
    const epoch = this.progress.epochSums.dither ??= { steps: 0, sums: {} };
    epoch.steps++;
    for (const [layer, s] of Object.entries(sparsity)) epoch.sums[layer] = (epoch.sums[layer] ?? 0) + s;
    return sparsity;
  }

  /** The epoch's mean sparsity per dithered layer ("dither.<layer>") and over layers ("dither.mean"). */
  private ditherMeasures(): Record<string, number> {
    const epoch = this.progress.epochSums.dither;
    if (!epoch || epoch.steps === 0) return {};
    const means = Object.entries(epoch.sums).map(([layer, sum]) => [`dither.${layer}`, sum / epoch.steps] as const);
    const overall = means.reduce((total, [, m]) => total + m, 0) / Math.max(1, means.length);
    return { ...Object.fromEntries(means), "dither.mean": overall };
  }

  get history(): readonly EpochRecord[] {
    return this.progress.history;
  }

  get step(): number {
    return this.position.step;
  }

  checkpoint(): Promise<Uint8Array> {
    return encodeCheckpoint(this.model, this.optimizer, {
      position: { ...this.position, rngNow: getRandomState() },
      extra: this.progress,
    });
  }

  /**
   * Continue from a checkpoint written by `checkpoint()`; returns its config for checks.
   * Its metadata is checked (validate.ts) before any weight is loaded: a CheckpointError
   * names the file and the field that cannot be trusted.
   */
  resume(bytes: Uint8Array, source: string): TrainConfig {
    const { position, extra } = decodeCheckpoint(bytes, source, this.model, this.optimizer, (position, extra) => {
      const progress = readProgress(Fields.of(extra, source, "extra."));
      checkPosition(position, progress, this.loader.numBatches, this.config, source);
      return progress;
    });
    this.position = position;
    this.progress = { ...extra, config: this.config };
    setRandomState(position.rngNow);
    return extra.config;
  }

  private done(): boolean {
    return this.config.steps > 0 ? this.position.step >= this.config.steps : this.position.epoch >= this.config.epochs;
  }

  async run(callbacks: TrainCallbacks = {}): Promise<{ interrupted: boolean; history: readonly EpochRecord[] }> {
    const batches = this.loader.numBatches;
    if (batches === 0) throw new ValueError(`train: batch size ${this.config.batchSize} is larger than the ${this.trainData.n} training images`);
    const interrupt = async () => {
      await callbacks.onInterrupt?.(() => this.checkpoint());
      return { interrupted: true, history: this.progress.history };
    };
    while (!this.done()) {
      // A stop between epochs happens before the next epoch draws its plan, so the
      // checkpoint's stream state is the epoch's start state.
      if (this.position.batchInEpoch === 0 && callbacks.shouldStop?.()) return interrupt();
      // Resuming mid-epoch: replay the epoch's plan from its start state, skip the batches
      // already trained on, then continue from the stream's state at the interruption.
      let pendingRestore = this.position.batchInEpoch > 0;
      const rngNow = getRandomState();
      if (pendingRestore) setRandomState(this.position.rngAtEpochStart);
      else this.position.rngAtEpochStart = rngNow;
      const sums = this.progress.epochSums;
      const started = performance.now();
      let imagesThisRun = 0;
      const epochBatches = this.loader.epoch();
      for (let batch = epochBatches.next(); !batch.done; batch = epochBatches.next()) {
        const { x, labels, index } = batch.value;
        if (index < this.position.batchInEpoch) {
          x.dispose(); // already trained on before the interruption
          continue;
        }
        if (pendingRestore) {
          setRandomState(rngNow);
          pendingRestore = false;
        }
        // Within an epoch, stop only once a batch of it is done: then batchInEpoch > 0 tells
        // resume() to replay the epoch's plan from its start state.
        if (index > 0 && callbacks.shouldStop?.()) {
          x.dispose();
          return interrupt();
        }
        const lr = this.schedule(this.position.step / batches);
        this.optimizer.lr = lr;
        // A probed step keeps its weights before the update and the stream its forward pass draws from.
        const randomState = getRandomState();
        const before = callbacks.probe?.due(this.position.step + 1) ? snapshotParameters(this.model) : null;
        const dropStep = () => {
          x.dispose();
          if (before) disposeParams(before);
        };
        let outputs: Awaited<ReturnType<typeof readOutputs>>, applied: boolean;
        try {
          outputs = await readOutputs(this.forwardBackward(x, labels), labels);
          applied = this.guard.admit(this.position.step + 1, this.position.epoch + 1, outputs.loss, outputs.gradNormSquared);
        } catch (error) {
          dropStep();
          throw error;
        }
        const { loss, correct, gradNormSquared: normSquared } = outputs;
        const ditherSparsity = await this.readDitherSparsity();
        if (applied) {
          this.optimizer.step();
          sums.loss += loss * labels.length;
          sums.correct += correct;
          sums.seen += labels.length;
        } else {
          sums.skipped++;
        }
        imagesThisRun += labels.length;
        this.position.step++;
        this.position.batchInEpoch = index + 1;
        try {
          if (before && applied) {
            await callbacks.probe!.measure({
              step: this.position.step, epoch: this.position.epoch + 1, lr, model: this.model, batch: { x, labels, randomState },
              loss: (logits, y) => this.loss(logits, y), before, after: new Map(this.model.namedParameters()),
            });
          }
        } finally {
          dropStep();
        }
        await callbacks.onStep?.({
          type: "step", epoch: this.position.epoch + 1, batch: index + 1, batches, batchSize: this.config.batchSize, step: this.position.step, lr, loss,
          gradNorm: Math.sqrt(normSquared), skipped: !applied,
          accuracy: sums.correct / sums.seen, imagesPerSec: imagesThisRun / ((performance.now() - started) / 1000),
          ...(ditherSparsity ? { ditherSparsity } : {}),
        });
        if (this.done()) break;
      }
      // Interrupted after the epoch's last batch: no batch restored the stream above.
      if (pendingRestore) setRandomState(rngNow);
      const seconds = (performance.now() - started) / 1000;
      const restoreTrainingWeights = this.optimizer.evaluationWeights?.();
      const test = await evaluate(this.model, this.testData, this.config, callbacks.onTestLogits)
        .finally(() => restoreTrainingWeights?.());
      if (!Number.isFinite(test.loss)) throw this.guard.failedEvaluation(this.position.step, this.position.epoch + 1, test.loss);
      const record: EpochRecord = {
        type: "epoch", epoch: this.position.epoch + 1, step: this.position.step, lr: this.optimizer.lr,
        trainLoss: sums.loss / sums.seen, trainAccuracy: sums.correct / sums.seen,
        testLoss: test.loss, testAccuracy: test.accuracy, skippedSteps: sums.skipped, seconds, imagesPerSec: imagesThisRun / seconds,
      };
      const measures = { ...this.ditherMeasures(), ...(callbacks.measureEpoch ? await callbacks.measureEpoch() : {}) };
      if (callbacks.measureEpoch || this.dither) record.measures = measures;
      this.progress.history.push(record);
      this.progress.epochSums = this.emptySums();
      this.position.epoch++;
      this.position.batchInEpoch = 0;
      await callbacks.onEpoch?.(record, () => this.checkpoint());
    }
    return { interrupted: false, history: this.progress.history };
  }

  /**
   * Forward and backward of one step; returns the logits, the loss and Σ‖g‖² (kept out of the
   * tidy) for reading. The optimiser steps only once they are read and found finite.
   */
  private forwardBackward(x: Tensor, labels: Int32Array): { logits: Tensor; loss: Tensor; gradNormSquared: Tensor | null } {
    return tidy(() => {
      this.optimizer.zeroGrad();
      const logits = this.model.forward(x);
      const loss = this.loss(logits, labels);
      loss.backward();
      return { logits, loss, gradNormSquared: gradNormSquared(this.optimizer.params) };
    });
  }

  /** The training loss: cross-entropy with the run's PowerGrad α and label smoothing. */
  private loss(logits: Tensor, labels: Int32Array): Tensor {
    return crossEntropy(logits, labels, { powerGrad: this.config.powerGrad, labelSmoothing: this.config.labelSmoothing });
  }
}
