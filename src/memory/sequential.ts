/**
 * PyTorch's checkpoint_sequential: run a chain of blocks in `segments` equal runs, each but
 * the last checkpointed (the last one's backward comes first, right after the forward, so
 * recomputing it would buy nothing). With k = √n segments of n equal blocks this is Chen et
 * al.'s √n plan: O(√n) memory for one extra forward pass.
 */
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "../nn/module.ts";
import { chain, type Step, stepOf } from "../nn/chain.ts";
import { checkpoint } from "./checkpoint.ts";

/** A block of a chain: a module or a function of one tensor. */
export type Block = Module | Step;

export const asStep = (block: Block): Step => block instanceof Module ? stepOf(block) : block;

/** The blocks in `segments` runs as PyTorch splits them: ⌊n/segments⌋ each, the remainder in the last. */
export function sequentialSegments(blockCount: number, segments: number): [number, number][] {
  if (!Number.isInteger(segments) || segments < 1 || segments > blockCount) {
    throw new ValueError(`checkpointSequential: segments must be an integer in [1, ${blockCount}] for ${blockCount} blocks, got ${segments}`);
  }
  const size = Math.floor(blockCount / segments);
  return Array.from({ length: segments }, (_, k) => [k * size, k === segments - 1 ? blockCount : (k + 1) * size]);
}

/** `blocks` applied to `x` in order, every segment but the last checkpointed. */
export function checkpointSequential(blocks: readonly Block[], segments: number, x: Tensor): Tensor {
  const steps = blocks.map(asStep);
  const runs = sequentialSegments(steps.length, segments);
  return chain(x, runs.map(([start, end], k) => {
    const run = steps.slice(start, end);
    return k === runs.length - 1 ? (t: Tensor) => chain(t, run) : (t: Tensor) => checkpoint((h) => chain(h, run), t);
  }));
}
