/**
 * What a memory plan is computed from, measured by running the chain once (after a warm-up
 * step that grows the kernels' scratch to its size for these shapes): for each block, the
 * bytes of its output, what its graph keeps besides its input and output, whether it keeps
 * its input and its output, the peak of its forward (recorded, and checkpointed), the peak and
 * net change of its backward pass, and its forward cost in FLOPs (multiply-adds of its
 * convolutions and linear layers ×2, plus one per output element). Bytes are the backend's
 * own accounting (rg.memory(): what its allocator hands out, size classes included), read
 * between blocks in the forward pass and by tensor hooks on the block outputs in the backward
 * pass, so nothing is estimated. The loss is profiled as a last block that is never
 * recomputed. The run moves no running statistic and draws nothing from the global stream,
 * and its gradients are discarded: the model is left exactly as it was.
 */
import { grad } from "../autograd.ts";
import type { Backend } from "../backend/backend.ts";
import { ValueError } from "../errors.ts";
import { getRandomState, withRandomState } from "../random.ts";
import { empty, type Tensor, tidy } from "../tensor.ts";
import { frozenStatsEverywhere } from "../nn/frozen_stats.ts";
import { Conv2d, Linear } from "../nn/layers.ts";
import type { Module } from "../nn/module.ts";
import { chain, stepOf } from "../nn/chain.ts";
import type { NamedBlock } from "./blocks.ts";
import { checkpoint } from "./checkpoint.ts";

export interface BlockProfile {
  name: string;
  /** Bytes of the block's output (as the allocator counts them). */
  outputBytes: number;
  /** Bytes the block's graph keeps for the backward pass besides its input and output. */
  keptBytes: number;
  /** Does the graph keep the block's input (a convolution does) and its output (a ReLU does)? */
  keepsInput: boolean;
  keepsOutput: boolean;
  /** Peak of the recorded forward above the bytes in use before it. */
  forwardPeak: number;
  /** The same, run as a checkpoint (nothing kept). */
  checkpointedForwardPeak: number;
  /** Peak of the block's backward pass above the bytes in use when it starts. */
  backwardPeak: number;
  /** Net change of the bytes in use over its backward pass, leaving out the freeing of its input and output. */
  backwardNet: number;
  /**
   * From the end of this block's forward to the start of its backward: what the rest of the
   * step leaves behind (gradients of later parameters, this block's output gradient), its
   * output left out.
   */
  untilBackward: number;
  /** Forward FLOPs: 2·multiply-adds of convolutions and linear layers, plus one per output element. */
  flops: number;
}

export interface ChainProfile {
  /** The model's blocks, then the loss (never recomputed). */
  blocks: BlockProfile[];
  inputBytes: number;
  /** Bytes in use when the step starts (parameters, buffers, the batch), plus `extraBytes`. */
  baseBytes: number;
  backend: string;
  inputShape: number[];
}

export interface ProfileOptions {
  /** Bytes the step will hold that are not there yet (an optimiser's state before its first step). */
  extraBytes?: number;
}

/** Bytes `backend`'s allocator hands out for a tensor of `shape` (its size class). */
export function allocatedBytes(backend: Backend, shape: readonly number[]): number {
  const before = backend.memory().bytesInUse;
  const probe = empty(shape, backend);
  const bytes = backend.memory().bytesInUse - before;
  probe.dispose();
  return bytes;
}

/** Count the forward FLOPs of the convolutions and linear layers inside `blocks` while `fn` runs. */
export function countingFlops<T>(blocks: readonly Module[], fn: (flopsOf: () => number) => T): T {
  let flops = 0;
  const handles = blocks.flatMap((block) => [...block.namedModules()].map(([, m]) => m)).flatMap((m) => {
    if (m instanceof Conv2d) return [m.registerForwardHook((_m, _x, y) => void (flops += 2 * y.size * (m.weight.size / m.outChannels)))];
    if (m instanceof Linear) return [m.registerForwardHook((_m, _x, y) => void (flops += 2 * y.size * m.inFeatures))];
    return [];
  });
  try {
    return fn(() => {
      const f = flops;
      flops = 0;
      return f;
    });
  } finally {
    for (const h of handles) h.remove();
  }
}

/** Run the blocks and the loss recording everything, with every probe; returns the per-block figures. */
function measureStored(blocks: readonly NamedBlock[], x: Tensor, loss: (out: Tensor) => Tensor) {
  const backend = x.backend;
  const inUse = () => backend.memory().bytesInUse;
  const peakSinceReset = () => backend.memory().peakBytes;
  const steps = [...blocks.map((b) => stepOf(b.module)), loss];
  const n = steps.length;
  const out = new Array<number>(n + 1).fill(0);
  const kept = new Array<number>(n).fill(0);
  const keepsInput = new Array<boolean>(n).fill(false);
  const keepsOutput = new Array<boolean>(n).fill(false);
  const forwardPeak = new Array<number>(n).fill(0);
  const afterForward = new Array<number>(n).fill(0);
  const backwardStart = new Array<number>(n).fill(0);
  const backwardPeakAt = new Array<number>(n).fill(0);
  const backwardEnd = new Array<number>(n).fill(0);
  out[0] = allocatedBytes(backend, x.shape);
  const handles: Tensor[] = [x];
  let h = x;
  for (let i = 0; i < n; i++) {
    const before = inUse();
    const refsBefore = h.storage.refs;
    backend.resetPeak();
    const y = steps[i](h);
    forwardPeak[i] = peakSinceReset() - before;
    out[i + 1] = allocatedBytes(backend, y.shape);
    kept[i] = inUse() - before - out[i + 1];
    keepsInput[i] = h.storage.refs > refsBefore;
    keepsOutput[i] = y.storage.refs > 1;
    // The block's output is where its backward pass starts: read the memory there, and close the
    // next block's backward pass (it ends where this one starts).
    if (y.requiresGrad) {
      y.registerHook(() => {
        backwardStart[i] = inUse();
        if (i + 1 < n) {
          backwardEnd[i + 1] = inUse();
          backwardPeakAt[i + 1] = peakSinceReset();
        }
        backend.resetPeak();
      });
    }
    // The chain's last tensors (the logits, the loss) stay with the caller, as a trainer keeps them.
    if (i > 0 && i < n - 1) h.dispose();
    handles.push(y);
    afterForward[i] = inUse();
    h = y;
  }
  const params = blocks.flatMap((b) => b.module.parameters()).filter((p, i, all) => p.requiresGrad && all.indexOf(p) === i);
  const grads = grad(h, params, { allowUnused: true });
  backwardEnd[0] = inUse();
  backwardPeakAt[0] = peakSinceReset();
  for (const g of grads) g?.dispose();
  for (const t of handles.slice(1)) t.dispose();
  return { n, out, kept, keepsInput, keepsOutput, forwardPeak, afterForward, backwardStart, backwardPeakAt, backwardEnd };
}

/** Run each block as a checkpoint of its own (keeping nothing), for the forward peaks and FLOPs. */
function measureCheckpointed(blocks: readonly NamedBlock[], x: Tensor) {
  const backend = x.backend;
  return countingFlops(blocks.map((b) => b.module), (flopsOf) => tidy(() => {
    const peaks: number[] = [];
    const flops: number[] = [];
    let h = x;
    for (const block of blocks) {
      const before = backend.memory().bytesInUse;
      backend.resetPeak();
      const y = checkpoint(stepOf(block.module), h);
      peaks.push(backend.memory().peakBytes - before);
      flops.push(flopsOf() + y.size);
      if (h !== x) h.dispose();
      h = y;
    }
    return { peaks, flops };
  }));
}

/**
 * Profile the chain `blocks` (then `loss` of its output) on the batch `x`, on x's backend, for
 * memory planning (see the file's header).
 */
export function profileChain(
  blocks: readonly NamedBlock[], x: Tensor, loss: (out: Tensor) => Tensor, opts: ProfileOptions = {},
): ChainProfile {
  if (blocks.length === 0) throw new ValueError("profileChain: no blocks");
  const extra = opts.extraBytes ?? 0;
  if (!(extra >= 0)) throw new ValueError(`profileChain: extraBytes must be ≥ 0, got ${extra}`);
  return withRandomState(getRandomState(), () => frozenStatsEverywhere(() => {
    // Warm-up: the kernels' scratch grows to its size for these shapes and stays.
    tidy(() => {
      const params = blocks.flatMap((b) => b.module.parameters());
      grad(loss(chain(x, blocks.map((b) => stepOf(b.module)))), params, { allowUnused: true });
    });
    const base = x.backend.memory().bytesInUse;
    const m = measureStored(blocks, x, loss);
    const c = measureCheckpointed(blocks, x);
    const pinned = (k: number) => k === 0 || k >= m.n - 1;
    const profiles: BlockProfile[] = [];
    for (let i = 0; i < m.n; i++) {
      const outputFreedInOwnBackward = m.keepsOutput[i] && !pinned(i + 1);
      const inputFreedInOwnBackward = m.keepsInput[i] && !(i > 0 && m.keepsOutput[i - 1]) && !pinned(i);
      const outputFreedBeforeBackward = !m.keepsOutput[i] && !pinned(i + 1);
      profiles.push({
        name: i < blocks.length ? blocks[i].name : "loss",
        outputBytes: m.out[i + 1],
        keptBytes: m.kept[i],
        keepsInput: m.keepsInput[i],
        keepsOutput: m.keepsOutput[i],
        forwardPeak: m.forwardPeak[i],
        checkpointedForwardPeak: i < blocks.length ? c.peaks[i] : m.forwardPeak[i],
        backwardPeak: m.backwardPeakAt[i] - m.backwardStart[i],
        backwardNet: m.backwardEnd[i] - m.backwardStart[i]
          + (outputFreedInOwnBackward ? m.out[i + 1] : 0) + (inputFreedInOwnBackward ? m.out[i] : 0),
        untilBackward: m.backwardStart[i] - m.afterForward[i] + (outputFreedBeforeBackward ? m.out[i + 1] : 0),
        flops: i < blocks.length ? c.flops[i] : 0,
      });
    }
    return { blocks: profiles, inputBytes: m.out[0], baseBytes: base + extra, backend: x.backend.name, inputShape: [...x.shape] };
  }));
}
