/**
 * The optimiser step on WebGPU as one dispatch over every parameter. PyTorch fuses it with
 * multi_tensor_apply, a kernel handed a table of tensor addresses; WebGPU has no device
 * addresses, and a dispatch binds at most maxStorageBuffersPerShaderStage buffers (8 by
 * default). So the step gathers parameters, gradients and momenta into three flat buffers
 * with copyBufferToBuffer, runs the SGD kernel once over the concatenation and copies
 * parameters and momenta back, all in the step's command encoder: no extra submit, and one
 * dispatch with one bind group where a ResNet-20 had 65. The price is five copies of the
 * parameters' bytes per step (ResNet-20: 5 × 1.1 MB) and three such scratch buffers, small
 * next to the convolutions. The copy-free alternative, every parameter a view into one flat
 * arena (FSDP's flat_param), would need aligned binding offsets in every kernel, storage
 * that write() can no longer swap (see GpuContext.write), and autograd writing gradients
 * into a gradient arena.
 *
 * Layout: parameters on their first step come first, so one uniform boundary tells the
 * kernel where momentum is read rather than initialised (their momenta are not gathered).
 * A step with more parameters than one buffer may hold is split into one dispatch per
 * buffer's worth (maxStorageBufferBindingSize; ResNet-50's 25.6 M fit the default 128 MiB).
 */
import { foldedGrid, type GpuBuffer, type GpuContext } from "./device.ts";
import { LINEAR_WORKGROUP } from "./kernel.ts";
import { sgdKernel } from "./kernels/elementwise.ts";

/** torch.optim.SGD's hyper-parameters for one step (the runtime's SgdOptions has this shape). */
export interface SgdHyperparameters {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** One parameter of the step; `momentum` is required when the step's momentum is not 0. */
export interface SgdEntry {
  param: GpuBuffer;
  grad: GpuBuffer;
  momentum: GpuBuffer | null;
  firstStep: boolean;
}

/** One dispatch's flat layout: entries in order, each at its offset (elements). */
export interface SgdChunk<E> {
  entries: E[];
  offsets: number[];
  /** Elements in all. */
  length: number;
  /** Elements of the leading first-step entries. */
  firstEnd: number;
}

/** Lay the entries end to end, first-step ones first, in chunks of at most maxElements. */
export function planSgd<E extends { param: { length: number }; firstStep: boolean }>(
  entries: readonly E[], maxElements: number,
): SgdChunk<E>[] {
  const ordered = [...entries.filter((e) => e.firstStep), ...entries.filter((e) => !e.firstStep)];
  const chunks: SgdChunk<E>[] = [];
  let chunk: SgdChunk<E> | null = null;
  for (const e of ordered) {
    const n = e.param.length;
    if (n === 0) continue;
    if (!chunk || chunk.length + n > maxElements) chunks.push(chunk = { entries: [], offsets: [], length: 0, firstEnd: 0 });
    chunk.entries.push(e);
    chunk.offsets.push(chunk.length);
    chunk.length += n;
    if (e.firstStep) chunk.firstEnd = chunk.length;
  }
  return chunks;
}

/** Record the step: per chunk, the gathering copies, one dispatch, the copies back. */
export function fusedSgd(
  ctx: GpuContext, entries: readonly SgdEntry[], o: SgdHyperparameters, maxElements = ctx.maxBufferElements,
): void {
  const useMomentum = o.momentum !== 0;
  for (const { entries: chunk, offsets, length, firstEnd } of planSgd(entries, maxElements)) {
    const params = ctx.alloc(length), grads = ctx.alloc(length);
    const momenta = useMomentum ? ctx.alloc(length) : null;
    chunk.forEach((e, k) => {
      const n = e.param.length;
      ctx.copy(e.param, params, n, 0, offsets[k]);
      ctx.copy(e.grad, grads, n, 0, offsets[k]);
      if (momenta && e.momentum && !e.firstStep) ctx.copy(e.momentum, momenta, n, 0, offsets[k]);
    });
    ctx.dispatch(sgdKernel, {
      params: {
        n: length, lr: o.lr, momentum: o.momentum, damp: Math.fround(1 - Math.fround(o.dampening)),
        weightDecay: o.weightDecay, useMomentum: useMomentum ? 1 : 0, nesterov: o.nesterov ? 1 : 0, firstEnd,
      },
      buffers: [params, grads, momenta],
      grid: foldedGrid(Math.ceil(length / LINEAR_WORKGROUP), ctx.limits.maxComputeWorkgroupsPerDimension),
    });
    chunk.forEach((e, k) => {
      ctx.copy(params, e.param, e.param.length, offsets[k]);
      if (momenta && e.momentum) ctx.copy(momenta, e.momentum, e.param.length, offsets[k]);
    });
    for (const b of [params, grads, momenta]) if (b) ctx.free(b);
  }
}
