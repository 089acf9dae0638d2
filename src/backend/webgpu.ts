/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: the Backend interface on WGSL compute kernels (gpu/kernels/) through
 * the device plumbing of gpu/device.ts. Each method checks its arguments' sizes, packs the
 * kernel's uniforms and records one dispatch into the pending command encoder (copy() is a
 * transfer command instead; sgdStep is one dispatch for all parameters between transfers,
 * see gpu/sgd.ts); nothing is submitted until a read, a flush(), or a full encoder.
 * Device failures surface as WebGPUError (DeviceLostError, or the validation error itself)
 * or as OutOfMemoryError (the class every backend raises), thrown by the next call or read. There is no readSync: the host
 * sees GPU memory only through `await read()`. Create it with `createWebGPUBackend()`, which
 * returns null where no (acceptable) adapter exists.
 */
import type {
  Backend, BinaryOp, Broadcast4, ConvGeometry, DeviceBuffer, MemoryInfo, PoolGeometry, SgdOptions, SgdParam,
} from "./backend.ts";
import { RetrogradError } from "../errors.ts";
import { mix } from "../random.ts";
import { DeviceLostError, foldedGrid, GpuBuffer, GpuContext, OutOfMemoryError, WebGPUError } from "../../gpu/device.ts";
import { type KernelSpec, LINEAR_WORKGROUP } from "../../gpu/kernel.ts";
import { fusedSgd } from "../../gpu/sgd.ts";
import {
  axpyKernel, BINARY_OP_CODES, binaryKernel, dropoutKernel, fillKernel, randomNormalKernel, randomUniformKernel,
  reluBackwardKernel, reluForwardKernel, scaleKernel, sigmoidBackwardKernel, sigmoidForwardKernel,
} from "../../gpu/kernels/elementwise.ts";
import {
  convBackwardInputKernels, convBackwardWeightKernels, convForwardKernels, type GemmFamily, gemmGrid, gemmKernels,
  rowsPerThread,
} from "../../gpu/kernels/gemm.ts";
import {
  batchNormBackwardKernel, batchNormEvalForwardKernel, batchNormReluEpilogueKernel, batchNormTrainForwardKernel,
} from "../../gpu/kernels/norm.ts";
import {
  avgPoolBackwardKernel, avgPoolForwardKernel, maxPoolBackwardKernel, maxPoolForwardKernel,
} from "../../gpu/kernels/pool.ts";
import {
  reduceBroadcastPerThread, reduceBroadcastPerWorkgroup, ROW_WORKGROUP, SHORT_REDUCTION, softmaxXentBackwardKernel,
  softmaxXentForwardKernel,
} from "../../gpu/kernels/reduce.ts";

export { DeviceLostError, OutOfMemoryError, WebGPUError };

type Four = [number, number, number, number];

function convParams(g: ConvGeometry): Record<string, number> {
  return {
    batch: g.N, C: g.C, H: g.H, W: g.W, O: g.O, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW,
    DH: g.DH, DW: g.DW, OH: g.OH, OW: g.OW, Cg: g.C / g.G, Og: g.O / g.G,
  };
}

function poolParams(g: PoolGeometry): Record<string, number> {
  return {
    batch: g.N, C: g.C, H: g.H, W: g.W, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW, OH: g.OH, OW: g.OW,
  };
}

/** Contiguous element strides of dims. */
function contiguousStrides(dims: Four): Four {
  return [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
}

export class WebGPUBackend implements Backend {
  readonly name = "webgpu";

  constructor(readonly context: GpuContext, readonly adapterDescription: string) {}

  get device(): GPUDevice {
    return this.context.device;
  }

  private buf(b: DeviceBuffer): GpuBuffer {
    if (!(b instanceof GpuBuffer)) throw new RetrogradError("webgpu: got a buffer of another backend");
    return b;
  }

  private opt(b: DeviceBuffer | null): GpuBuffer | null {
    return b === null ? null : this.buf(b);
  }

  private need(op: string, b: DeviceBuffer, length: number, what: string): void {
    if (b.length < length) {
      throw new RetrogradError(`webgpu ${op}: ${what} holds ${b.length} elements, the kernel needs ${length}`);
    }
  }

  /** One thread per element: `n` elements, flat workgroups folded into x/y. */
  private linear(spec: KernelSpec, n: number, buffers: (DeviceBuffer | null)[], params: Record<string, number> = {},
    constants?: Record<string, number | boolean>): void {
    if (n === 0) return;
    const grid = foldedGrid(Math.ceil(n / LINEAR_WORKGROUP), this.context.limits.maxComputeWorkgroupsPerDimension);
    this.context.dispatch(spec, { params: { n, ...params }, constants, buffers: buffers.map((b) => this.opt(b)), grid });
  }

  /** One workgroup per row (channel, sample, output). */
  private rows(spec: KernelSpec, rows: number, buffers: (DeviceBuffer | null)[], params: Record<string, number>,
    constants?: Record<string, number | boolean>): void {
    if (rows === 0) return;
    const grid = foldedGrid(rows, this.context.limits.maxComputeWorkgroupsPerDimension);
    this.context.dispatch(spec, { params, constants, buffers: buffers.map((b) => this.opt(b)), grid });
  }

  private tiled(family: GemmFamily, M: number, N: number, K: number, groups: number, buffers: DeviceBuffer[],
    params: Record<string, number>, constants?: Record<string, number | boolean>): void {
    if (M === 0 || N === 0) return;
    this.context.dispatch(family[rowsPerThread(M)], {
      params: { gM: M, gN: N, gK: K, ...params }, constants, buffers: buffers.map((b) => this.buf(b)),
      grid: gemmGrid(M, N, groups),
    });
  }

  // ---- memory and transfers ----

  alloc(length: number): DeviceBuffer {
    return this.context.alloc(length);
  }
  free(buf: DeviceBuffer): void {
    this.context.free(this.buf(buf));
  }
  write(buf: DeviceBuffer, data: Float32Array | Int32Array): void {
    if (data.length < buf.length) {
      throw new RetrogradError(`webgpu write: ${data.length} values for a buffer of ${buf.length} elements`);
    }
    this.context.write(this.buf(buf), data);
  }
  read(buf: DeviceBuffer): Promise<Float32Array> {
    return this.context.read(this.buf(buf));
  }
  memory(): MemoryInfo {
    return this.context.memory();
  }
  resetPeak(): void {
    this.context.resetPeak();
  }

  /** Submit every recorded dispatch now. */
  flush(): void {
    this.context.flush();
  }
  /** Submit and wait for the GPU to finish (throws a recorded device error). */
  synchronize(): Promise<void> {
    return this.context.synchronize();
  }
  /** Dispatches recorded and command buffers submitted since creation. */
  stats(): { dispatches: number; submits: number } {
    return { dispatches: this.context.dispatches, submits: this.context.submits };
  }
  /** Release the device; every buffer of this backend becomes invalid. */
  destroy(): void {
    this.context.destroy();
  }

  // ---- elementwise ----

  fill(y: DeviceBuffer, value: number): void {
    this.linear(fillKernel, y.length, [y], { value });
  }
  copy(x: DeviceBuffer, y: DeviceBuffer): void {
    this.need("copy", x, y.length, "x");
    this.context.copy(this.buf(x), this.buf(y), y.length);
  }
  axpy(alpha: number, x: DeviceBuffer, y: DeviceBuffer): void {
    this.need("axpy", x, y.length, "x");
    this.linear(axpyKernel, y.length, [x, y], { alpha });
  }
  scale(x: DeviceBuffer, y: DeviceBuffer, alpha: number): void {
    this.need("scale", x, y.length, "x");
    this.linear(scaleKernel, y.length, [x, y], { alpha });
  }
  randomUniform(y: DeviceBuffer, lo: number, hi: number, key: number, counter: number): void {
    const span = Math.fround(Math.fround(hi) - Math.fround(lo));
    this.linear(randomUniformKernel, y.length, [y], { lo, span, mixedKey: mix((key ^ 0x9e3779b9) >>> 0), counter, one: 1 });
  }
  randomNormal(y: DeviceBuffer, mean: number, std: number, key: number, counter: number): void {
    this.linear(randomNormalKernel, Math.ceil(y.length / 2), [y], {
      length: y.length, mean, stddev: std, mixedKey: mix((key ^ 0x9e3779b9) >>> 0), counter,
    });
  }

  reluForward(x: DeviceBuffer, y: DeviceBuffer): void {
    this.need("reluForward", x, y.length, "x");
    this.linear(reluForwardKernel, y.length, [x, y]);
  }
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    this.linear(reluBackwardKernel, dx.length, [y, dy, dx]);
  }
  sigmoidForward(x: DeviceBuffer, y: DeviceBuffer): void {
    this.need("sigmoidForward", x, y.length, "x");
    this.linear(sigmoidForwardKernel, y.length, [x, y]);
  }
  sigmoidBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    this.linear(sigmoidBackwardKernel, dx.length, [y, dy, dx]);
  }

  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const [d0, d1, d2, d3] = bc.dims;
    const total = d0 * d1 * d2 * d3;
    this.need(`binary ${op}`, y, total, "y");
    const [as0, as1, as2, as3] = bc.aStrides;
    const [bs0, bs1, bs2, bs3] = bc.bStrides;
    this.linear(binaryKernel, total, [a, b, y],
      { d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3 }, { OP: BINARY_OP_CODES[op] });
  }

  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const dims = bc.dims;
    const xStrides = contiguousStrides(dims);
    // Split the dims into those y keeps (nonzero stride) and those summed away.
    const kept: { d: number; y: number; x: number }[] = [];
    const reduced: { d: number; x: number }[] = [];
    dims.forEach((d, k) => {
      if (bc.aStrides[k] !== 0 || d === 1) kept.push({ d, y: Math.max(1, bc.aStrides[k]), x: xStrides[k] });
      else reduced.push({ d, x: xStrides[k] });
    });
    while (kept.length < 4) kept.push({ d: 1, y: 1, x: 0 });
    while (reduced.length < 4) reduced.unshift({ d: 1, x: 0 });
    const R = reduced.reduce((p, r) => p * r.d, 1);
    const params: Record<string, number> = { ySize: y.length, R };
    kept.forEach((k, i) => Object.assign(params, { [`kd${i}`]: k.d, [`ky${i}`]: k.y, [`kx${i}`]: k.x }));
    reduced.forEach((r, i) => Object.assign(params, { [`rd${i}`]: r.d, [`rx${i}`]: r.x }));
    if (R <= SHORT_REDUCTION) {
      const grid = foldedGrid(Math.ceil(y.length / ROW_WORKGROUP), this.context.limits.maxComputeWorkgroupsPerDimension);
      if (y.length > 0) {
        this.context.dispatch(reduceBroadcastPerThread, { params, buffers: [this.buf(x), this.buf(y)], grid });
      }
    } else {
      this.rows(reduceBroadcastPerWorkgroup, y.length, [x, y], params);
    }
  }

  dropoutForward(
    x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, key: number, counter: number,
  ): void {
    // keep = 1/(1−p) rounded once, as the CPU's f32 division gives it (WGSL division is not exact).
    const keep = Math.fround(1 / Math.fround(1 - Math.fround(p)));
    this.linear(dropoutKernel, y.length, [x, y, mask], { p, keep, mixedKey: mix((key ^ 0x9e3779b9) >>> 0), counter });
  }

  // ---- GEMM-shaped ----

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: DeviceBuffer, B: DeviceBuffer, beta: number, C: DeviceBuffer,
  ): void {
    this.need("gemm", A, M * K, "A");
    this.need("gemm", B, K * N, "B");
    this.need("gemm", C, M * N, "C");
    this.tiled(gemmKernels, M, N, K, 1, [A, B, C], { alpha, beta }, { TRANS_A: transA, TRANS_B: transB });
  }

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Kc = (g.C / g.G) * g.KH * g.KW;
    this.tiled(convForwardKernels, Og, g.N * g.OH * g.OW, Kc, g.G, [x, w, y], convParams(g));
  }
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Cg = g.C / g.G;
    this.tiled(convBackwardInputKernels, Cg, g.N * g.H * g.W, Og * g.KH * g.KW, g.G, [dy, w, dx], convParams(g));
  }
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Kc = (g.C / g.G) * g.KH * g.KW;
    if (g.N * g.OH * g.OW === 0) return this.fill(dw, 0);
    this.tiled(convBackwardWeightKernels, Og, Kc, g.N * g.OH * g.OW, g.G, [dy, x, dw], convParams(g));
  }

  // ---- batch norm ----

  batchNormTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.rows(batchNormTrainForwardKernel, C,
      [x, gamma, beta, y, saveMean, saveInvstd, runningMean, runningVar],
      { batch: N, C, HW, momentum, eps, updateRunning: runningMean && runningVar ? 1 : 0 });
  }
  batchNormEvalForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer,
    runningMean: DeviceBuffer, runningVar: DeviceBuffer, y: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.linear(batchNormEvalForwardKernel, N * C * HW, [x, gamma, beta, runningMean, runningVar, y],
      { batch: N, C, HW, eps });
  }
  batchNormBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number,
  ): void {
    this.rows(batchNormBackwardKernel, C, [dy, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta],
      { batch: N, C, HW, eps: 0 }, { EVAL: false });
  }
  batchNormEvalBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, runningMean: DeviceBuffer,
    runningVar: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.rows(batchNormBackwardKernel, C, [dy, x, gamma, runningMean, runningVar, dx, dgamma, dbeta],
      { batch: N, C, HW, eps }, { EVAL: true });
  }

  /**
   * Two dispatches: the batch-norm kernel writes the normalised values into y, an elementwise
   * epilogue adds the residual and applies the ReLU in place. (One kernel would bind more
   * storage buffers than the 8 every adapter allows.)
   */
  batchNormReluTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, residual: DeviceBuffer | null, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.batchNormTrainForward(x, gamma, beta, y, saveMean, saveInvstd, runningMean, runningVar, N, C, HW, momentum, eps);
    if (residual) this.need("batchNormReluTrainForward", residual, y.length, "residual");
    this.linear(batchNormReluEpilogueKernel, y.length, [y, residual], {}, { RESIDUAL: residual !== null });
  }
  /** The masked gradient (relu_backward) goes to dresidual, or a temporary, then through batchNormBackward. */
  batchNormReluBackward(
    dy: DeviceBuffer, y: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    dresidual: DeviceBuffer | null, N: number, C: number, HW: number,
  ): void {
    const masked = dresidual ?? this.alloc(dx.length);
    this.reluBackward(y, dy, masked);
    this.batchNormBackward(masked, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta, N, C, HW);
    if (!dresidual) this.free(masked);
  }

  // ---- pooling ----

  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void {
    this.linear(maxPoolForwardKernel, g.N * g.C * g.OH * g.OW, [x, y, argmax], poolParams(g));
  }
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void {
    this.linear(maxPoolBackwardKernel, g.N * g.C * g.H * g.W, [dy, argmax, dx], poolParams(g));
  }
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    this.linear(avgPoolForwardKernel, g.N * g.C * g.OH * g.OW, [x, y], poolParams(g), { INCLUDE_PAD: countIncludePad });
  }
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    this.linear(avgPoolBackwardKernel, g.N * g.C * g.H * g.W, [dy, dx], poolParams(g), { INCLUDE_PAD: countIncludePad });
  }

  // ---- loss and optimiser ----

  softmaxCrossEntropy(
    logits: DeviceBuffer, labels: DeviceBuffer, losses: DeviceBuffer,
    N: number, C: number, smoothing: number,
  ): void {
    this.rows(softmaxXentForwardKernel, N, [logits, labels, losses],
      { rows: N, C, smoothing, uni: C > 0 ? smoothing / C : 0, alpha: 1 });
  }
  softmaxCrossEntropyBackward(
    logits: DeviceBuffer, labels: DeviceBuffer, dlogits: DeviceBuffer,
    N: number, C: number, smoothing: number, alpha: number, scale: number,
  ): void {
    this.rows(softmaxXentBackwardKernel, N, [logits, labels, dlogits],
      { rows: N, C, smoothing, uni: C > 0 ? smoothing / C : 0, alpha, scale });
  }

  sgdStep(params: readonly SgdParam[], o: SgdOptions): void {
    const entries = params.map((p) => {
      this.need("sgdStep", p.grad, p.param.length, "grad");
      if (o.momentum !== 0) {
        if (!p.momentum) throw new RetrogradError("webgpu sgdStep: momentum is not 0, so every parameter needs a momentum buffer");
        this.need("sgdStep", p.momentum, p.param.length, "momentum");
      }
      return { param: this.buf(p.param), grad: this.buf(p.grad), momentum: this.opt(p.momentum), firstStep: p.firstStep };
    });
    fusedSgd(this.context, entries, o);
  }
}

/** The WebGPU API where the host has one (browsers, Deno), else undefined (Node without a binding). */
function gpuApi(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

/**
 * A WebGPU backend on the host's adapter, or null when there is no WebGPU, no adapter, or
 * only a fallback (software) adapter and `allowFallback` is not set.
 */
/**
 * A WebGPU backend on the runtime's adapter (navigator.gpu in Deno and browsers), or on a
 * `gpu` object the caller brings (in Node: the optional npm `webgpu` package's `create([])`).
 * Null when there is no adapter, or only a software (fallback) one and allowFallback is off.
 */
export async function createWebGPUBackend(
  opts: { allowFallback?: boolean; gpu?: GPU } = {},
): Promise<WebGPUBackend | null> {
  const gpu = opts.gpu ?? gpuApi();
  if (!gpu) return null;
  const adapter = await gpu.requestAdapter();
  if (!adapter) return null;
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean } | undefined;
  const isFallback = info?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  if (isFallback && !opts.allowFallback) return null;
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const description = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || "unknown adapter";
  return new WebGPUBackend(new GpuContext(device), description);
}
