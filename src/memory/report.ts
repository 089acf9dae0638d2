/**
 * A chosen plan in words and as data: which blocks each segment holds and whether it is
 * recomputed, the predicted peak beside the peak without recomputation and the smallest
 * feasible one, and the forward work the recomputation adds (FLOPs, and as a share of one
 * forward pass). The text is what `retrograd train --memory-budget` prints; the data is what it
 * writes to config.json.
 */
import { forwardFlops, type Plan, type Segment } from "./cost_model.ts";
import type { ChosenPlan } from "./planners.ts";
import type { ChainProfile } from "./profile.ts";

export interface PlanSummary {
  method: string;
  budgetBytes: number | null;
  /** Each segment: its blocks [start, end), their names, whether it is recomputed. */
  segments: (Segment & { blocks: string[] })[];
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

/** The plan a summary describes (as read back from config.json). */
export function planOf(summary: PlanSummary): Plan {
  return { segments: summary.segments.map(({ start, end, recompute }) => ({ start, end, recompute })) };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The plan as a few lines: segments (recomputed ones in brackets), peaks, added work. */
export function describePlan(summary: PlanSummary): string {
  const segments = summary.segments.map((s) => {
    const names = s.blocks.length > 2 ? `${s.blocks[0]} … ${s.blocks[s.blocks.length - 1]}` : s.blocks.join(" ");
    return s.recompute ? `[${names}]` : names;
  }).join(" | ");
  const recomputed = summary.segments.filter((s) => s.recompute).length;
  const share = summary.forwardFlops > 0 ? (100 * summary.extraForwardFlops / summary.forwardFlops).toFixed(0) : "0";
  return [
    `memory plan (${summary.method}${summary.budgetBytes !== null ? `, budget ${mib(summary.budgetBytes)}` : ""}; batch [${summary.inputShape.join(", ")}] on ${summary.backend}):`,
    `  ${segments}`,
    `  ${recomputed} recomputed segment${recomputed === 1 ? "" : "s"} (in brackets); predicted peak ${mib(summary.predictedPeakBytes)}` +
    ` (without recomputation ${mib(summary.keepAllPeakBytes)}; smallest feasible ${mib(summary.smallestFeasibleBytes)})`,
    `  extra forward work ${(summary.extraForwardFlops / 1e9).toFixed(3)} GFLOP per step, ${share} % of one forward pass`,
  ].join("\n");
}
