/**
 * The loss landscape along the gradient, Santurkar et al.'s measures of smoothness ("How does
 * batch normalization help optimization?", NeurIPS 2018, §3.1). At step t, on the step's
 * batch, with g = ∇L(W^t) and the step's learning rate η, for each step size η′ = m·η of a
 * grid of multipliers m (default ½, 1, 1½, …, 4: the range [½η, 4η]):
 *
 *   W′ = W^t − η′·g,   record L(W′) and ‖g − ∇L(W′)‖₂
 *
 * and, over the grid (not over samples or steps):
 *   lossVariation           = max L(W′) − min L(W′)          ("variation of the loss")
 *   gradientPredictiveness  = max ‖g − g′‖₂ − min ‖g − g′‖₂   (the range of the gradient change)
 *   effectiveBetaSmoothness = max ‖g − g′‖₂ / ‖η′·g‖₂         ("effective β-smoothness")
 *
 * The paper draws the first two as bands (min to max) over training; the per-η′ values are
 * kept for that. The direction is the plain loss gradient (no momentum, no weight decay).
 */
import { axpy, difference, disposeParams, norm } from "./param_maps.ts";
import type { StepContext } from "./probed_step.ts";

/** η′/η from ½ to 4 in steps of ½. */
export const DEFAULT_STEP_MULTIPLIERS: readonly number[] = [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4];

export interface LandscapeMeasures {
  /** The step sizes η′ of the grid. */
  stepSizes: number[];
  /** L(W^t − η′g) for each η′. */
  losses: number[];
  /** ‖g − ∇L(W^t − η′g)‖₂ for each η′. */
  gradientChanges: number[];
  /** L(W^t) and ‖g‖₂. */
  loss: number;
  gradNorm: number;
  lossVariation: number;
  gradientPredictiveness: number;
  effectiveBetaSmoothness: number;
}

const range = (v: number[]) => Math.max(...v) - Math.min(...v);

export async function lossLandscape(ctx: StepContext, multipliers: readonly number[] = DEFAULT_STEP_MULTIPLIERS): Promise<LandscapeMeasures> {
  const { before, lr } = ctx.step;
  const { loss, grads } = await ctx.gradient();
  const gradNorm = await norm(grads);
  const stepSizes = multipliers.map((m) => m * lr);
  const losses: number[] = [];
  const gradientChanges: number[] = [];
  for (const stepSize of stepSizes) {
    const moved = axpy(before, -stepSize, grads);
    const there = ctx.objective.valueAndGrad(moved);
    const change = difference(grads, there.grads);
    losses.push((await there.loss.data())[0]);
    gradientChanges.push(await norm(change));
    there.loss.dispose();
    for (const map of [moved, there.grads, change]) disposeParams(map);
  }
  return {
    stepSizes, losses, gradientChanges, loss, gradNorm,
    lossVariation: range(losses),
    gradientPredictiveness: range(gradientChanges),
    effectiveBetaSmoothness: Math.max(...gradientChanges.map((c, j) => c / (stepSizes[j] * gradNorm))),
  };
}
