/**
 * `rg.recompute`: recomputation planned under a memory budget. checkpoint() and
 * checkpointSequential() themselves are at the top level (rg.checkpoint).
 *
 *   const profile = rg.recompute.profileModel(model, x, labels);        // one measured step
 *   const chosen = rg.recompute.choosePlan(profile, "optimal", 512 * 2 ** 20);
 *   console.log(rg.recompute.describePlan(rg.recompute.summarizePlan(chosen, profile)));
 *   const planned = new rg.recompute.PlannedModel(model, chosen.plan);  // train this one
 */
import { crossEntropy } from "../ops/loss.ts";
import type { Tensor } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import { namedBlocksOf } from "./blocks.ts";
import { type ChainProfile, profileChain, type ProfileOptions } from "./profile.ts";

export { blocksOf, namedBlocksOf, type NamedBlock } from "./blocks.ts";
export { sequentialSegments } from "./sequential.ts";
export { type BlockProfile, type ChainProfile, profileChain, type ProfileOptions } from "./profile.ts";
export { forwardFlops, type Plan, predict, type Prediction, type Segment } from "./cost_model.ts";
export {
  choosePlan, type ChosenPlan, greedyAt, greedyPlan, keepAll, optimalPlan, PLAN_METHODS, type PlanMethod, smallestPeak, sqrtPlan,
} from "./planners.ts";
export { describePlan, planOf, type PlanSummary, summarizePlan } from "./report.ts";
export { PlannedModel, runPlan } from "./plan_runner.ts";

/** Profile `model`'s chain of blocks on the batch `x` with a cross-entropy loss on `labels`. */
export function profileModel(model: Module, x: Tensor, labels: Parameters<typeof crossEntropy>[1], opts: ProfileOptions = {}): ChainProfile {
  return profileChain(namedBlocksOf(model), x, (logits) => crossEntropy(logits, labels), opts);
}
