/**
 * What a probe is handed about one training step, and what the probes of that step share.
 * The trainer (or `retrograd analyze`) describes the step: its batch with the random state its
 * forward pass began from, the loss, and the parameters before (W^t) and after (W^{t+1}) the
 * update. `StepContext` adds the batch objective (objective.ts) and computes the gradient at
 * W^t once for every probe that needs it.
 */
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { mix, type RandomState } from "../random.ts";
import { BatchObjective, type LossFn, type ProbeBatch } from "./objective.ts";
import { disposeParams, type ParamMap } from "./param_maps.ts";

export interface ProbedStep {
  /** The step just taken (1-based, as in step records). */
  step: number;
  epoch: number;
  /** The learning rate of the step. */
  lr: number;
  model: Module;
  batch: ProbeBatch;
  loss: LossFn;
  /** Every parameter before the update (W^t), by state-dict name. */
  before: ParamMap;
  /** Every parameter after the update (W^{t+1}). */
  after: ParamMap;
}

export class StepContext {
  readonly objective: BatchObjective;
  private base: Promise<{ loss: number; grads: Map<string, Tensor> }> | null = null;

  constructor(readonly step: ProbedStep) {
    this.objective = new BatchObjective(step.model, step.batch, step.loss);
  }

  /** L(W^t) and ∇L(W^t) on the step's batch, computed on first use; freed by dispose(). */
  gradient(): Promise<{ loss: number; grads: Map<string, Tensor> }> {
    this.base ??= (async () => {
      const { loss, grads } = this.objective.valueAndGrad(this.step.before);
      const value = (await loss.data())[0];
      loss.dispose();
      return { loss: value, grads };
    })();
    return this.base;
  }

  /**
   * A random stream of the probe's own (random directions of the curvature probe), derived
   * from the run's stream and the step, so the same run draws the same directions.
   */
  stream(salt: number): RandomState {
    const { seed, counter } = this.step.batch.randomState;
    return { seed: mix((mix((seed ^ salt) >>> 0) + counter + this.step.step) >>> 0), counter: 0 };
  }

  async dispose(): Promise<void> {
    if (this.base) disposeParams((await this.base).grads);
    this.base = null;
  }
}
