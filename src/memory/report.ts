/**
 * A chosen plan in words and as data: which blocks (or, for a graph plan, which ops) each
 * segment holds and whether it is recomputed, the predicted peak beside the peak without
 * recomputation and the smallest feasible one, and the forward work the recomputation adds
 * (FLOPs, and as a share of one forward pass). The text is what `retrograd train
 * --memory-budget` prints; the data is what it writes to config.json.
 */
import { forwardFlops, type Plan, type Segment } from "./cost_model.ts";
import type { ComputationGraph } from "./graph.ts";
import type { ChosenGraphPlan, GraphPlan, GraphSegment } from "./graph_planner.ts";
import type { ChosenPlan } from "./planners.ts";
import type { ChainProfile } from "./profile.ts";

export interface PlanSummary {
  method: string;
  budgetBytes: number | null;
  /** Each segment: its blocks [start, end), their names, whether it is recomputed (none for a graph plan). */
  segments: (Segment & { blocks: string[] })[];
  /** A graph plan's segments: the ops of each (graph.ts nodes), their names, whether it is recomputed. */
  graphSegments?: (GraphSegment & { names: string[] })[];
  predictedPeakBytes: number;
  keepAllPeakBytes: number;
  smallestFeasibleBytes: number;
  extraForwardFlops: number;
  forwardFlops: number;
  backend: string;
  inputShape: number[];
}

export function summarizePlan(chosen: ChosenPlan, profile: ChainProfile): PlanSummary {
  return {
    method: chosen.method,
    budgetBytes: chosen.budgetBytes,
    segments: chosen.plan.segments.map((s) => ({ ...s, blocks: profile.blocks.slice(s.start, s.end).map((b) => b.name) })),
    predictedPeakBytes: chosen.prediction.peakBytes,
    keepAllPeakBytes: chosen.keepAllPeakBytes,
    smallestFeasibleBytes: chosen.smallestFeasibleBytes,
    extraForwardFlops: chosen.prediction.extraFlops,
    forwardFlops: forwardFlops(profile),
    backend: profile.backend,
    inputShape: profile.inputShape,
  };
}

/** The summary of a plan over the model's graph of ops (method "graph"). */
export function summarizeGraphPlan(chosen: ChosenGraphPlan, graph: ComputationGraph): PlanSummary {
  return {
    method: "graph",
    budgetBytes: chosen.budgetBytes,
    segments: [],
    graphSegments: chosen.plan.segments.map((s) => ({ ...s, names: s.nodes.map((v) => graph.nodes[v].name) })),
    predictedPeakBytes: chosen.prediction.peakBytes,
    keepAllPeakBytes: chosen.keepAllPeakBytes,
    smallestFeasibleBytes: chosen.smallestFeasibleBytes,
    extraForwardFlops: chosen.prediction.extraFlops,
    forwardFlops: graph.nodes.reduce((f, node) => f + node.flops, 0),
    backend: graph.backend,
    inputShape: graph.inputShape,
  };
}

/** The graph plan a summary describes (null: it is a chain plan). */
export function graphPlanOf(summary: PlanSummary): GraphPlan | null {
  return summary.graphSegments ? { segments: summary.graphSegments.map(({ nodes, recompute }) => ({ nodes, recompute })) } : null;
}

/** The plan a summary describes (as read back from config.json). */
export function planOf(summary: PlanSummary): Plan {
  return { segments: summary.segments.map(({ start, end, recompute }) => ({ start, end, recompute })) };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The plan as a few lines: segments (recomputed ones in brackets), peaks, added work. */
export function describePlan(summary: PlanSummary): string {
  const all = summary.graphSegments?.map((s) => ({ names: s.names, recompute: s.recompute })) ?? summary.segments.map((s) => ({ names: s.blocks, recompute: s.recompute }));
  const segments = all.map((s) => {
    const names = s.names.length > 2 ? `${s.names[0]} … ${s.names[s.names.length - 1]}` : s.names.join(" ");
    return s.recompute ? `[${names}]` : names;
  }).join(" | ");
  const recomputed = all.filter((s) => s.recompute).length;
  const share = summary.forwardFlops > 0 ? (100 * summary.extraForwardFlops / summary.forwardFlops).toFixed(0) : "0";
  return [
    `memory plan (${summary.method}${summary.budgetBytes !== null ? `, budget ${mib(summary.budgetBytes)}` : ""}; batch [${summary.inputShape.join(", ")}] on ${summary.backend}):`,
    `  ${segments}`,
    `  ${recomputed} recomputed segment${recomputed === 1 ? "" : "s"} (in brackets); predicted peak ${mib(summary.predictedPeakBytes)}` +
    ` (without recomputation ${mib(summary.keepAllPeakBytes)}; smallest feasible ${mib(summary.smallestFeasibleBytes)})`,
    `  extra forward work ${(summary.extraForwardFlops / 1e9).toFixed(3)} GFLOP per step, ${share} % of one forward pass`,
  ].join("\n");
}
