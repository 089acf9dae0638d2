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
import type { ComputationGraph } from "./graph.ts";
import { profileGraph } from "./model_graph.ts";

export { blocksOf, namedBlocksOf, type NamedBlock } from "./blocks.ts";
export { sequentialSegments } from "./sequential.ts";
export { type BlockProfile, type ChainProfile, profileChain, type ProfileOptions } from "./profile.ts";
export { forwardFlops, type Plan, predict, type Prediction, type Segment } from "./cost_model.ts";
export {
  choosePlan, type ChosenPlan, greedyAt, greedyPlan, keepAll, optimalPlan, PLAN_METHODS, type PlanMethod, smallestPeak, sqrtPlan,
} from "./planners.ts";
export { describePlan, graphPlanOf, planOf, type PlanSummary, summarizeGraphPlan, summarizePlan } from "./report.ts";
export { PlannedModel, runPlan } from "./plan_runner.ts";
export { ancestorSet, boundary, type ComputationGraph, type GraphNode, lowerSetFamily, type LowerSet, successorsOf } from "./graph.ts";
export { type CutState, fewestFlops, leastPeak, type LowerSetChain, paretoChains, type SegmentEffect, type SegmentModel } from "./lower_set_dp.ts";
export {
  chooseGraphPlan, type ChosenGraphPlan, cutsOf, type GraphPlan, type GraphPrediction, type GraphSegment, keepAllGraph, kusumotoModel, kusumotoUnit, planOfChain,
  predictGraphPlan,
} from "./graph_planner.ts";
export { type OpNode, opsOf, profileGraph } from "./model_graph.ts";
export { GraphPlannedModel, runGraphPlan } from "./graph_runner.ts";

/** Profile `model`'s graph of ops (model_graph.ts) on the batch `x` with a cross-entropy loss on `labels`. */
export function profileModelGraph(model: Module, x: Tensor, labels: Parameters<typeof crossEntropy>[1], opts: ProfileOptions = {}): ComputationGraph {
  return profileGraph(model, x, (logits) => crossEntropy(logits, labels), opts);
}

/** Profile `model`'s chain of blocks on the batch `x` with a cross-entropy loss on `labels`. */
export function profileModel(model: Module, x: Tensor, labels: Parameters<typeof crossEntropy>[1], opts: ProfileOptions = {}): ChainProfile {
  return profileChain(namedBlocksOf(model), x, (logits) => crossEntropy(logits, labels), opts);
}
