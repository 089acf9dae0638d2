/**
 * What a plan costs, predicted from a chain's profile: its peak memory and the forward FLOPs it
 * adds. A plan cuts the chain into segments; a recomputed segment runs as one checkpoint (its
 * forward keeps only its input, its backward replays it), a kept one records as usual. The
 * model follows the step as it runs (memory/plan_runner.ts): the forward pass block by block
 * (each block's recorded or checkpointed forward peak on top of what is held; then its kept
 * bytes and output are added, and the tensor it read is freed unless a graph or a checkpoint
 * still holds it), then each segment's backward pass, which starts from what was held when its
 * forward ended plus what the later blocks leave behind (their parameters' gradients and the
 * output gradient; profile.untilBackward), replays the segment if it is recomputed, and walks
 * its blocks' backward passes (their measured peaks and net changes). Only the boundary tensors'
 * lifetimes depend on the plan, and the model tracks them exactly.
 *
 * A segment's cost depends on what came before it only through the bytes held when it starts
 * and whether the tensor at its start is held by the graph before it. That is what makes the
 * exact dynamic program of planners.ts possible: `advance` is the step it takes, and
 * `predict` folds it over a plan.
 */
import { ValueError } from "../errors.ts";
import type { ChainProfile } from "./profile.ts";

/** Blocks [start, end) of the chain, kept as recorded or recomputed in the backward pass. */
export interface Segment {
  start: number;
  end: number;
  recompute: boolean;
}

/** The model's blocks cut into segments, in order, covering every block (the loss is not part of it). */
export interface Plan {
  segments: Segment[];
}

/** Where a plan stands after some segments: bytes held, the peak so far, FLOPs added. */
export interface PlanState {
  /** Next block. */
  position: number;
  /** Bytes in use after the forward pass of the segments so far. */
  held: number;
  /** Does the graph of the block before `position` keep its output (the next segment's input)? */
  inputKeptBefore: boolean;
  peak: number;
  extraFlops: number;
}

export function initialState(profile: ChainProfile): PlanState {
  return { position: 0, held: profile.baseBytes, inputKeptBefore: false, peak: profile.baseBytes, extraFlops: 0 };
}

/** The state after `segment` (forward and, later, backward). */
export function advance(profile: ChainProfile, state: PlanState, segment: Segment): PlanState {
  const b = profile.blocks;
  const last = b.length - 1; // the loss
  const out = (k: number) => (k === 0 ? profile.inputBytes : b[k - 1].outputBytes);
  // The input, the logits and the loss stay with the caller.
  const pinned = (k: number) => k === 0 || k >= last;
  const { start, end, recompute } = segment;
  let held = state.held;
  let peak = state.peak;

  // Forward.
  for (let i = start; i < end; i++) {
    if (recompute) {
      peak = Math.max(peak, held + b[i].checkpointedForwardPeak);
      held += b[i].outputBytes;
      if (i > start) held -= out(i); // inside the checkpoint nothing holds it; its input the checkpoint keeps
    } else {
      peak = Math.max(peak, held + b[i].forwardPeak);
      held += b[i].keptBytes + b[i].outputBytes;
      const keptByProducer = i === start ? state.inputKeptBefore : b[i - 1].keepsOutput;
      if (!pinned(i) && !keptByProducer && !b[i].keepsInput) held -= out(i);
    }
  }

  // Backward, when it comes: what is held now, what the later blocks leave, this segment's output
  // only if its own graph keeps it.
  const ownOutput = !recompute && b[end - 1].keepsOutput;
  let m = held + b[end - 1].untilBackward - (ownOutput || pinned(end) ? 0 : out(end));
  if (recompute) {
    for (let i = start; i < end; i++) {
      peak = Math.max(peak, m + b[i].forwardPeak);
      m += b[i].keptBytes + b[i].outputBytes;
      if (i > start && !b[i - 1].keepsOutput && !b[i].keepsInput) m -= out(i);
    }
    if (!b[end - 1].keepsOutput) m -= out(end); // the replay's output, unless its graph keeps it
  }
  for (let i = end - 1; i >= start; i--) {
    peak = Math.max(peak, m + b[i].backwardPeak);
    m += b[i].backwardNet;
    // Its output (kept by its graph: the original, or the replay's copy) goes now...
    if (b[i].keepsOutput && (recompute || !pinned(i + 1))) m -= out(i + 1);
    // ...and its input, inside the segment, if this block was the last to keep it.
    if (i > start && b[i].keepsInput && !b[i - 1].keepsOutput) m -= out(i);
  }

  const flops = recompute ? b.slice(start, end).reduce((f, blk) => f + blk.flops, 0) : 0;
  return { position: end, held, inputKeptBefore: !recompute && b[end - 1].keepsOutput, peak, extraFlops: state.extraFlops + flops };
}

/** The loss, last: recorded, never recomputed. */
export function finish(profile: ChainProfile, state: PlanState): PlanState {
  const loss = profile.blocks.length - 1;
  return advance(profile, state, { start: loss, end: loss + 1, recompute: false });
}

export interface Prediction {
  /** Predicted peak of the step's bytes in use (rg.memory().peakBytes). */
  peakBytes: number;
  /** Forward FLOPs the recomputation adds to a step. */
  extraFlops: number;
}

/** Check that `plan` cuts `blockCount` blocks into consecutive, non-empty segments. */
export function checkPlanCovers(plan: Plan, blockCount: number): void {
  let at = 0;
  for (const [k, s] of plan.segments.entries()) {
    if (s.start !== at || !Number.isInteger(s.end) || !(s.end > s.start)) {
      throw new ValueError(`memory plan: segment ${k} is [${s.start}, ${s.end}), expected it to start at block ${at} and be non-empty`);
    }
    at = s.end;
  }
  if (at !== blockCount) throw new ValueError(`memory plan: the segments cover blocks [0, ${at}) of ${blockCount}`);
}

export function predict(profile: ChainProfile, plan: Plan): Prediction {
  checkPlanCovers(plan, profile.blocks.length - 1);
  const end = finish(profile, plan.segments.reduce((state, s) => advance(profile, state, s), initialState(profile)));
  return { peakBytes: end.peak, extraFlops: end.extraFlops };
}

/** Forward FLOPs of one forward pass of the model's blocks. */
export function forwardFlops(profile: ChainProfile): number {
  return profile.blocks.reduce((f, b) => f + b.flops, 0);
}
