/**
 * Noticing divergence. Every training step's loss is read back anyway; with it the trainer
 * reads one more scalar, the squared global gradient norm Σ‖g‖², computed on the device from
 * the gradients (a multiply and a sum per parameter, added up), so a NaN or ±Infinity
 * anywhere in the backward pass is seen before the optimiser applies it, at no extra
 * synchronisation. Then the policy decides: "stop" (the default) raises a DivergenceError
 * naming the step, the epoch and the last finite loss, with the weights left as they were
 * before that step; "skip" drops the step's update, as AMP's GradScaler does with an
 * overflowing step, and counts it.
 */
import { noGrad } from "../autograd.ts";
import { DivergenceError } from "../errors.ts";
import { add, mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import type { Tensor } from "../tensor.ts";

export type NonFinitePolicy = "stop" | "skip";

/** Σ‖g‖² over the gradients of `params` as one scalar on their backend (null: no gradient yet). */
export function gradNormSquared(params: readonly Tensor[]): Tensor | null {
  return noGrad(() => {
    let total: Tensor | null = null;
    for (const p of params) {
      if (!p.grad) continue;
      const squares = sum(mul(p.grad, p.grad));
      total = total ? add(total, squares) : squares;
    }
    return total;
  });
}

/** The running check of one training run. */
export class DivergenceGuard {
  /** Loss of the last step that was finite (NaN before the first). */
  lastFiniteLoss = NaN;
  private lastFiniteStep = 0;

  constructor(readonly policy: NonFinitePolicy = "stop") {}

  /**
   * Whether step `step` (1-based, of epoch `epoch`) may be applied: true when its loss and
   * squared gradient norm are finite, false when not and the policy skips; a DivergenceError
   * when not and the policy stops.
   */
  admit(step: number, epoch: number, loss: number, gradNormSquared: number): boolean {
    if (Number.isFinite(loss) && Number.isFinite(gradNormSquared)) {
      this.lastFiniteLoss = loss;
      this.lastFiniteStep = step;
      return true;
    }
    if (this.policy === "skip") return false;
    throw new DivergenceError(
      `training diverged at step ${step} (epoch ${epoch}): loss ${loss}, gradient norm ${Math.sqrt(gradNormSquared)}; ` +
        `${this.lastFiniteStep > 0 ? `the last finite loss was ${this.lastFiniteLoss} (step ${this.lastFiniteStep})` : "no step had a finite loss"}. ` +
        "The step was not applied",
      step, epoch, this.lastFiniteLoss,
    );
  }

  /** An evaluation after the update of `step` gave a non-finite loss: the weights are no longer finite. */
  failedEvaluation(step: number, epoch: number, testLoss: number): DivergenceError {
    return new DivergenceError(
      `training diverged by step ${step} (epoch ${epoch}): the test loss after it is ${testLoss}, ` +
        `so the weights are no longer finite; the last finite training loss was ${this.lastFiniteLoss}`,
      step, epoch, this.lastFiniteLoss,
    );
  }
}
