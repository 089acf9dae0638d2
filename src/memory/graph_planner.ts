/**
 * Plans over a computation graph (graph.ts) by Kusumoto et al. 2019's lower-set dynamic
 * program (lower_set_dp.ts) with their time-centric cost terms, as their group's implementation
 * computes them, for the segment S = L′ \ L of a chain of lower sets:
 *
 * - kept after its forward pass: ∂(L′) \ L, the values of S that a later segment reads (their
 *   bytes stay held until the backward pass is past them: a checkpoint keeps its inputs);
 * - while its backward pass runs: every value of S again, recomputed, with what each op keeps
 *   for its backward; the values just outside L′ that read S (δ⁺(L′) \ L′), standing for the
 *   gradients that flow into S; and the other inputs of those (δ⁻(δ⁺(L′)) \ L′ \ δ⁺(L′));
 * - the step's peak: the fixed bytes (graph.ts) plus what is kept so far plus the above, the
 *   largest over the segments.
 *
 * Two departures, both about how retrograd runs a plan (graph_runner.ts). A recomputed segment
 * costs the FLOPs of all of S, not of S \ ∂(L′): a checkpoint replays its function whole, the
 * boundary values' ops included, because those ops' saved tensors are needed too. And a segment
 * may also be recorded as usual (no FLOPs; everything it makes stays until its backward pass),
 * which is what the last segment always is in their execution. The plan is the chain with the
 * fewest added FLOPs whose peak fits the budget.
 *
 * This model is Kusumoto et al.'s, coarser than the chain's (cost_model.ts), which follows each
 * block's measured peaks to the byte: it counts values and saved tensors, not the backward
 * rules' scratch, and takes the gradients as the successors' values. docs/memory.md compares
 * its predictions with measured peaks.
 */
import { ValueError } from "../errors.ts";
import {
  boundary, checkGraph, type ComputationGraph, difference, lowerSetFamily, type LowerSet, successorsOf,
} from "./graph.ts";
import { applyEffect, type CutState, fewestFlops, leastPeak, type LowerSetChain, type SegmentModel } from "./lower_set_dp.ts";
import { MemoryBudgetError } from "./errors.ts";

/** Nodes of the graph run as one segment, recomputed in the backward pass or recorded. */
export interface GraphSegment {
  nodes: number[];
  recompute: boolean;
}

/** Segments in order; the union of the first i is a lower set for every i, and all of them cover the graph. */
export interface GraphPlan {
  segments: GraphSegment[];
}

export interface GraphPrediction {
  peakBytes: number;
  extraFlops: number;
}

/**
 * The FLOPs one unit of time stands for in Kusumoto et al.'s implementation: the least width
 * with which the nodes' FLOPs, each rounded up to whole units, add up to fewer than 5·|V| units.
 */
export function kusumotoUnit(graph: ComputationGraph): number {
  const limit = 5 * graph.nodes.length;
  const units = (width: number) => graph.nodes.reduce((sum, node) => sum + Math.ceil(node.flops / width), 0);
  let low = 1, high = Math.max(1, graph.nodes.reduce((sum, node) => sum + node.flops, 0));
  if (units(low) < limit) return low;
  while (high - low > 1) {
    const width = Math.floor((low + high) / 2);
    if (units(width) < limit) high = width;
    else low = width;
  }
  return high;
}

/**
 * Kusumoto et al.'s time-centric cost terms over `graph` (see the file's header), each node's
 * FLOPs counted in whole units of `unit` FLOPs, rounded up (1: exact).
 */
export function kusumotoModel(graph: ComputationGraph, unit = 1): SegmentModel {
  const successors = successorsOf(graph);
  const nodes = graph.nodes;
  const cost = nodes.map((node) => Math.ceil(node.flops / unit));
  const bytes = (set: (v: number) => boolean, all: boolean) =>
    nodes.reduce((sum, node, v) => sum + (set(v) ? node.outputBytes + (all ? node.savedBytes : 0) : 0), 0);
  return {
    start: (): CutState => ({ held: graph.fixedBytes, peak: graph.fixedBytes, extraFlops: 0, tag: 0 }),
    effect(from: LowerSet, to: LowerSet, recompute: boolean) {
      const inSegment = (v: number) => to.members[v] && !from.members[v];
      const edge = boundary(successors, to);
      const outside = nodes.map((_, v) => !to.members[v] && nodes[v].inputs.some((u) => u >= 0 && to.members[u]));
      const otherInputs = nodes.map(() => false);
      outside.forEach((o, w) => {
        if (o) for (const u of nodes[w].inputs) if (u >= 0 && !to.members[u] && !outside[u]) otherInputs[u] = true;
      });
      const segment = bytes(inSegment, true);
      const gradients = bytes((v) => outside[v], false) + bytes((v) => otherInputs[v], false);
      if (!recompute) return { peakAbove: segment + gradients, heldDelta: segment, flops: 0, tag: 0 };
      const flops = nodes.reduce((f, _, v) => f + (inSegment(v) ? cost[v] : 0), 0);
      return { peakAbove: segment + gradients, heldDelta: bytes((v) => inSegment(v) && edge[v], false), flops, tag: 0 };
    },
    finish: (state: CutState) => state,
  };
}

/** The lower sets a plan's segments end at, checking that they are lower sets and cover the graph. */
export function cutsOf(graph: ComputationGraph, plan: GraphPlan): LowerSet[] {
  const n = graph.nodes.length;
  const members = new Array<boolean>(n).fill(false);
  const cuts: LowerSet[] = [];
  let size = 0;
  plan.segments.forEach((segment, k) => {
    if (segment.nodes.length === 0) throw new ValueError(`graph plan: segment ${k} is empty`);
    for (const v of segment.nodes) {
      if (!Number.isInteger(v) || v < 0 || v >= n || members[v]) throw new ValueError(`graph plan: segment ${k} holds node ${v}, which is not a node of the graph or is in an earlier segment`);
      members[v] = true;
      size++;
    }
    for (const v of segment.nodes) {
      const missing = graph.nodes[v].inputs.find((u) => u >= 0 && !members[u]);
      if (missing !== undefined) throw new ValueError(`graph plan: segment ${k} runs node ${v} (${graph.nodes[v].name}) before node ${missing} it reads`);
    }
    cuts.push({ members: [...members], size });
  });
  if (size !== n) throw new ValueError(`graph plan: the segments cover ${size} of ${n} nodes`);
  return cuts;
}

/** The plan's predicted peak and added forward FLOPs. */
export function predictGraphPlan(graph: ComputationGraph, plan: GraphPlan, model = kusumotoModel(graph)): GraphPrediction {
  checkGraph(graph);
  const cuts = cutsOf(graph, plan);
  let from: LowerSet = { members: graph.nodes.map(() => false), size: 0 };
  let state = model.start();
  cuts.forEach((to, k) => {
    const effect = model.effect(from, to, plan.segments[k].recompute, state.tag);
    if (!effect) throw new ValueError(`graph plan: segment ${k} is not one this model runs`);
    state = applyEffect(state, effect);
    from = to;
  });
  const end = model.finish(state);
  return { peakBytes: end.peak, extraFlops: end.extraFlops };
}

/** The plan a chain of the family stands for. */
export function planOfChain(family: readonly LowerSet[], chain: LowerSetChain): GraphPlan {
  let from = family[0];
  return {
    segments: chain.cuts.map((at, k) => {
      const nodes = difference(from, family[at]);
      from = family[at];
      return { nodes, recompute: chain.recompute[k] };
    }),
  };
}

/** No recomputation: the whole graph one recorded segment. */
export function keepAllGraph(graph: ComputationGraph): GraphPlan {
  return { segments: [{ nodes: graph.nodes.map((_, v) => v), recompute: false }] };
}

export interface ChosenGraphPlan {
  plan: GraphPlan;
  prediction: GraphPrediction;
  budgetBytes: number;
  keepAllPeakBytes: number;
  smallestFeasibleBytes: number;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The plan with the fewest added FLOPs whose predicted peak fits `budgetBytes`, FLOPs counted
 * in Kusumoto et al.'s units (kusumotoUnit; `exact`: one FLOP each, which only small graphs
 * afford: the number of distinct FLOP totals grows fast); a budget below every plan's peak is
 * refused with a MemoryBudgetError naming the smallest feasible budget.
 */
export function chooseGraphPlan(graph: ComputationGraph, budgetBytes: number, opts: { exact?: boolean } = {}): ChosenGraphPlan {
  if (!(budgetBytes > 0)) throw new ValueError(`graph plan: the budget must be > 0 bytes, got ${budgetBytes}`);
  checkGraph(graph);
  const family = lowerSetFamily(graph);
  const model = kusumotoModel(graph, opts.exact ? 1 : kusumotoUnit(graph));
  const smallest = leastPeak(family, model).peakBytes;
  const keepAllPeak = predictGraphPlan(graph, keepAllGraph(graph), model).peakBytes;
  const best = fewestFlops(family, model, budgetBytes);
  if (!best) {
    throw new MemoryBudgetError(`memory budget ${mib(budgetBytes)} is below the smallest feasible budget ${mib(smallest)} (${smallest} bytes: the least predicted peak of any plan over this graph's lower sets; without recomputation ${mib(keepAllPeak)})`, budgetBytes, smallest);
  }
  const plan = planOfChain(family, best);
  return {
    plan,
    prediction: predictGraphPlan(graph, plan),
    budgetBytes,
    keepAllPeakBytes: keepAllPeak,
    smallestFeasibleBytes: smallest,
  };
}
