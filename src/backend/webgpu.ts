/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU backend: the Backend interface on WGSL compute kernels (gpu/kernels/) through
 * the device plumbing of gpu/device.ts. Each method checks its arguments' sizes, packs the
 * kernel's uniforms and records one dispatch into the pending command encoder (copy() is a
 * transfer command instead; sgdStep is one dispatch for all parameters between transfers,
 * see gpu/sgd.ts); the encoder is submitted at a read, a flush(), or every few dispatches
 * (GpuContext.dispatchesPerSubmit).
 * Device failures surface as WebGPUError (DeviceLostError, or the validation error itself)
 * or as OutOfMemoryError (the class every backend raises), thrown by the next call or read.
 * There is no readSync: the host sees GPU memory only through `await read()`. Create it with
 * `acquireWebGPU()`, which says why when no (acceptable) adapter exists, or
 * `createWebGPUBackend()`, which returns null then (`rg.useWebGPU()` also makes it the backend
 * for new tensors).
 */
import {
  type AxisReduction, type AxisView, type Backend, type BatchNormBackwardArgs, type BatchNormEvalArgs,
  type BatchNormTrainArgs, type BinaryOp, type Broadcast4, type BroadcastSelect, type ConvGeometry, type DeviceBuffer,
  type Distribution, type DrawPosition, type GemmArgs, type MemoryInfo, type PoolGeometry, type SgdOptions,
  type SgdParam, type SoftmaxXentArgs, type SymmetricEigenArgs, type UnaryOp, type UnaryParams, unaryScalars,
} from "./backend.ts";
import { DeviceLostError, OutOfMemoryError, RetrogradError, ShapeError, WebGPUError, WebGPUUnavailableError } from "../errors.ts";
import { mix } from "../random.ts";
import { CPU_ADAPTER_WORKGROUPS, foldedGrid, GpuBuffer, GpuContext, MAX_DISPATCHES_PER_SUBMIT } from "../../gpu/device.ts";
import type { GpuErrors } from "../../gpu/errors.ts";
import { type KernelSpec, LINEAR_WORKGROUP } from "../../gpu/kernel.ts";
import { fusedSgd } from "../../gpu/sgd.ts";
import {
  axpyKernel, BINARY_OP_CODES, binaryKernel, dropoutKernel, fillKernel, randomBernoulliKernel, randomNormalKernel,
  randomUniformKernel, reluBackwardKernel, reluForwardKernel, scaleKernel, sigmoidBackwardKernel, sigmoidForwardKernel,
  whereKernel,
} from "../../gpu/kernels/elementwise.ts";
import { UNARY_OP_CODES, unaryBackwardKernel, unaryForwardKernel } from "../../gpu/kernels/unary.ts";
import {
  AXIS_REDUCTION_CODES, reduceAxisPerThread, reduceAxisPerWorkgroup, scatterAxisKernel,
} from "../../gpu/kernels/reduce_axis.ts";
import {
  CONV_BACKWARD_INPUT, CONV_BACKWARD_WEIGHT, CONV_FORWARD, type ConvConstants, dispatchGemm, GEMM, type GemmShape,
} from "../../gpu/kernels/gemm.ts";
import {
  batchNormBackwardFinalizeKernel, batchNormBackwardInputKernel, batchNormBackwardPartialKernel, batchNormEvalForwardKernel,
  batchNormNormalizeKernel, batchNormStatsFinalizeKernel, batchNormStatsPartialKernel, channelBlocks,
} from "../../gpu/kernels/norm.ts";
import { JACOBI_MAX_N, symmetricEigenKernel } from "../../gpu/kernels/jacobi.ts";
import {
  avgPoolBackwardKernel, avgPoolForwardKernel, maxPoolBackwardKernel, maxPoolForwardKernel,
} from "../../gpu/kernels/pool.ts";
import {
  reduceBroadcastPerThread, reduceBroadcastPerWorkgroup, ROW_WORKGROUP, SHORT_REDUCTION, softmaxXentBackwardKernel,
  softmaxXentForwardKernel,
} from "../../gpu/kernels/reduce.ts";

/** The runtime's typed errors for the plumbing below (gpu/ imports nothing from src/). */
const TYPED_ERRORS: GpuErrors = {
  lost: (message) => new DeviceLostError(message),
  outOfMemory: (message) => new OutOfMemoryError(message),
  failure: (message) => new WebGPUError(message),
};

type Four = [number, number, number, number];

/** The pipeline constants of a convolution kernel: its geometry but the batch (which stays a uniform). */
function convConstants(g: ConvGeometry): ConvConstants {
  return {
    C: g.C, H: g.H, W: g.W, O: g.O, KH: g.KH, KW: g.KW, SH: g.SH, SW: g.SW, PH: g.PH, PW: g.PW,
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

  /** One thread per output (short reductions), in workgroups of ROW_WORKGROUP. */
  private perOutput(spec: KernelSpec, outputs: number, buffers: (DeviceBuffer | null)[], params: Record<string, number>,
    constants?: Record<string, number | boolean>): void {
    if (outputs === 0) return;
    const grid = foldedGrid(Math.ceil(outputs / ROW_WORKGROUP), this.context.limits.maxComputeWorkgroupsPerDimension);
    this.context.dispatch(spec, { params, constants, buffers: buffers.map((b) => this.opt(b)), grid });
  }

  private tiled(shape: GemmShape, M: number, N: number, K: number, groups: number, buffers: DeviceBuffer[],
    params: Record<string, number>, constants?: Record<string, number | boolean>): void {
    dispatchGemm(this.context, shape, { M, N, K, groups }, buffers.map((b) => this.buf(b)), params, constants);
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
  random(y: DeviceBuffer, dist: Distribution, at: DrawPosition): void {
    const mixedKey = mix((at.key ^ 0x9e3779b9) >>> 0);
    if (dist.kind === "uniform") {
      const span = Math.fround(Math.fround(dist.high) - Math.fround(dist.low));
      this.linear(randomUniformKernel, y.length, [y], { lo: dist.low, span, mixedKey, counter: at.counter, one: 1 });
    } else if (dist.kind === "bernoulli") {
      this.linear(randomBernoulliKernel, y.length, [y], { p: dist.p, mixedKey, counter: at.counter });
    } else {
      this.linear(randomNormalKernel, Math.ceil(y.length / 2), [y], {
        length: y.length, mean: dist.mean, stddev: dist.std, mixedKey, counter: at.counter,
      });
    }
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

  where(cond: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: BroadcastSelect): void {
    const [d0, d1, d2, d3] = bc.dims;
    const total = d0 * d1 * d2 * d3;
    this.need("where", y, total, "y");
    const strides = (prefix: string, s: Four) => Object.fromEntries(s.map((v, k) => [`${prefix}${k}`, v]));
    this.linear(whereKernel, total, [cond, a, b, y],
      { d1, d2, d3, ...strides("cs", bc.cStrides), ...strides("as", bc.aStrides), ...strides("bs", bc.bStrides) });
  }

  unary(op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, params: UnaryParams): void {
    this.need(`unary ${op}`, x, y.length, "x");
    const [p0, p1] = unaryScalars(op, params);
    this.linear(unaryForwardKernel, y.length, [x, y], { p0, p1 }, { OP: UNARY_OP_CODES[op] });
  }
  unaryBackward(op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, params: UnaryParams): void {
    for (const [b, what] of [[x, "x"], [y, "y"], [dy, "dy"]] as const) this.need(`unaryBackward ${op}`, b, dx.length, what);
    const [p0, p1] = unaryScalars(op, params);
    this.linear(unaryBackwardKernel, dx.length, [x, y, dy, dx], { p0, p1 }, { OP: UNARY_OP_CODES[op] });
  }

  reduceAxis(x: DeviceBuffer, y: DeviceBuffer, { outer, size, inner }: AxisView, r: AxisReduction): void {
    const outputs = outer * inner;
    this.need("reduceAxis", x, outputs * size, "x");
    this.need("reduceAxis", y, outputs, "y");
    const indices = r.op === "sum" ? null : r.indices;
    if (indices) this.need("reduceAxis", indices, outputs, "indices");
    const params = { outputs, size, inner, divisor: r.op === "sum" ? r.divisor : 1 };
    const constants = { OP: AXIS_REDUCTION_CODES[r.op], INDICES: indices !== null };
    if (size <= SHORT_REDUCTION) this.perOutput(reduceAxisPerThread, outputs, [x, y, indices], params, constants);
    else this.rows(reduceAxisPerWorkgroup, outputs, [x, y, indices], params, constants);
  }
  scatterAxis(dy: DeviceBuffer, indices: DeviceBuffer, dx: DeviceBuffer, { size, inner }: AxisView): void {
    this.linear(scatterAxisKernel, dx.length, [dy, indices, dx], { size, inner });
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
    if (R <= SHORT_REDUCTION) this.perOutput(reduceBroadcastPerThread, y.length, [x, y], params);
    else this.rows(reduceBroadcastPerWorkgroup, y.length, [x, y], params);
  }

  dropoutForward(x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, at: DrawPosition): void {
    // keep = 1/(1−p) rounded once, as the CPU's f32 division gives it (WGSL division is not exact).
    const keep = Math.fround(1 / Math.fround(1 - Math.fround(p)));
    this.linear(dropoutKernel, y.length, [x, y, mask], { p, keep, mixedKey: mix((at.key ^ 0x9e3779b9) >>> 0), counter: at.counter });
  }

  // ---- GEMM-shaped ----

  gemm({ transA, transB, M, N, K, alpha, a, b, beta, c }: GemmArgs): void {
    this.need("gemm", a, M * K, "A");
    this.need("gemm", b, K * N, "B");
    this.need("gemm", c, M * N, "C");
    this.tiled(GEMM, M, N, K, 1, [a, b, c], { alpha, beta }, { TRANS_A: transA, TRANS_B: transB });
  }

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Kc = (g.C / g.G) * g.KH * g.KW;
    this.tiled(CONV_FORWARD, Og, g.N * g.OH * g.OW, Kc, g.G, [x, w, y], {}, convConstants(g));
  }
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Cg = g.C / g.G;
    this.tiled(CONV_BACKWARD_INPUT, Cg, g.N * g.H * g.W, Og * g.KH * g.KW, g.G, [dy, w, dx], {}, convConstants(g));
  }
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void {
    const Og = g.O / g.G, Kc = (g.C / g.G) * g.KH * g.KW;
    if (g.N * g.OH * g.OW === 0) return this.fill(dw, 0);
    this.tiled(CONV_BACKWARD_WEIGHT, Og, Kc, g.N * g.OH * g.OW, g.G, [dy, x, dw], {}, convConstants(g));
  }

  // ---- batch norm ----

  batchNormTrainForward(a: BatchNormTrainArgs): void {
    this.batchNormTrain(a, null, false);
  }
  batchNormEvalForward(a: BatchNormEvalArgs): void {
    if (a.residual) this.need("batchNormEvalForward", a.residual, a.y.length, "residual");
    this.linear(batchNormEvalForwardKernel, a.N * a.C * a.HW,
      [a.x, a.gamma, a.beta, a.runningMean, a.runningVar, a.residual, a.y], { batch: a.N, eps: a.eps },
      { C: a.C, HW: a.HW, RELU: a.relu, RESIDUAL: a.residual !== null });
  }
  /**
   * Three dispatches (gpu/kernels/norm.ts): Σdy and Σdy·(x − mean) per block of each channel,
   * dγ and dβ per channel, then dx elementwise; with the batch statistics (mean, invstd) or,
   * EVAL, the running ones (mean, var with eps).
   */
  batchNormBackward(a: BatchNormBackwardArgs): void {
    const batch = a.stats.kind === "batch";
    const second = a.stats.kind === "batch" ? a.stats.invstd : a.stats.var;
    const params = { batch: a.N, eps: batch ? 0 : a.eps };
    const constants = { EVAL: !batch };
    this.channelReduction(batchNormBackwardPartialKernel, batchNormBackwardFinalizeKernel, a, [a.dy, a.x, a.stats.mean],
      [second, a.dgamma, a.dbeta], params, constants);
    this.linear(batchNormBackwardInputKernel, a.N * a.C * a.HW,
      [a.dy, a.x, a.gamma, a.stats.mean, second, a.dgamma, a.dbeta, a.dx], params, { C: a.C, HW: a.HW, ...constants });
  }

  /** BatchNorm → (+ residual) → ReLU: the training forward with the epilogue in its elementwise pass. */
  batchNormReluTrainForward(a: BatchNormTrainArgs & { residual: DeviceBuffer | null }): void {
    if (a.residual) this.need("batchNormReluTrainForward", a.residual, a.y.length, "residual");
    this.batchNormTrain(a, a.residual, true);
  }

  /**
   * Three dispatches (gpu/kernels/norm.ts): partial statistics per block of each channel,
   * the channel's mean, invstd and running statistics, then y elementwise (with `relu`, the
   * fused epilogue: relu(residual + y), or relu(y) without a residual).
   */
  private batchNormTrain(a: BatchNormTrainArgs, residual: DeviceBuffer | null, relu: boolean): void {
    const params = { batch: a.N, momentum: a.running?.momentum ?? 0, eps: a.eps, updateRunning: a.running ? 1 : 0 };
    this.channelReduction(batchNormStatsPartialKernel, batchNormStatsFinalizeKernel, a, [a.x],
      [a.saveMean, a.saveInvstd, a.running?.mean ?? null, a.running?.var ?? null], params);
    this.linear(batchNormNormalizeKernel, a.N * a.C * a.HW, [a.x, a.gamma, a.beta, a.saveMean, a.saveInvstd, residual, a.y],
      params, { C: a.C, HW: a.HW, RELU: relu, RESIDUAL: residual !== null });
  }

  /**
   * A per-channel reduction in two dispatches: `partial` over (blocks × channels) workgroups
   * on `inputs`, writing two values per block into a temporary, then `finalize`, one
   * workgroup per channel, on the temporary and `rest` (its outputs among them). Both are
   * specialised on the shape (C, HW); `constants` are the finalize kernel's own.
   */
  private channelReduction(partial: KernelSpec, finalize: KernelSpec, a: { N: number; C: number; HW: number },
    inputs: DeviceBuffer[], rest: (DeviceBuffer | null)[], params: Record<string, number>,
    constants?: Record<string, number | boolean>): void {
    if (a.C === 0) return;
    const { blocks, blockLen } = channelBlocks(a.N * a.HW);
    const partials = this.context.alloc(2 * blocks * a.C);
    const all = { ...params, blocks, blockLen };
    const shape = { C: a.C, HW: a.HW };
    this.context.dispatch(partial, {
      params: all, constants: shape, buffers: [...inputs.map((b) => this.buf(b)), partials], grid: [blocks, a.C, 1],
    });
    this.rows(finalize, a.C, [partials, ...rest], all, { ...shape, ...constants });
    this.context.free(partials);
  }

  /** The masked gradient (relu_backward) goes to dresidual, or a temporary, then through batchNormBackward. */
  batchNormReluBackward(a: BatchNormBackwardArgs & { y: DeviceBuffer; dresidual: DeviceBuffer | null }): void {
    const masked = a.dresidual ?? this.alloc(a.dx.length);
    this.reluBackward(a.y, a.dy, masked);
    this.batchNormBackward({ ...a, dy: masked });
    if (!a.dresidual) this.free(masked);
  }

  // ---- pooling ----

  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void {
    this.linear(maxPoolForwardKernel, g.N * g.C * g.OH * g.OW, [x, y, argmax], poolParams(g));
  }
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void {
    this.linear(maxPoolBackwardKernel, g.N * g.C * g.H * g.W, [dy, argmax, dx], poolParams(g));
  }
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void {
    this.linear(avgPoolForwardKernel, g.N * g.C * g.OH * g.OW, [x, y], poolParams(g), { INCLUDE_PAD: g.countIncludePad });
  }
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void {
    this.linear(avgPoolBackwardKernel, g.N * g.C * g.H * g.W, [dy, dx], poolParams(g), { INCLUDE_PAD: g.countIncludePad });
  }

  // ---- loss and optimiser ----

  softmaxCrossEntropy(a: SoftmaxXentArgs, losses: DeviceBuffer): void {
    this.rows(softmaxXentForwardKernel, a.N, [a.logits, a.labels, losses],
      { rows: a.N, C: a.C, smoothing: a.smoothing, uni: a.C > 0 ? a.smoothing / a.C : 0, alpha: 1 });
  }
  softmaxCrossEntropyBackward(a: SoftmaxXentArgs, dlogits: DeviceBuffer, alpha: number, scale: number): void {
    this.rows(softmaxXentBackwardKernel, a.N, [a.logits, a.labels, dlogits],
      { rows: a.N, C: a.C, smoothing: a.smoothing, uni: a.C > 0 ? a.smoothing / a.C : 0, alpha, scale });
  }

  /** Float32 cyclic Jacobi, one workgroup per matrix (gpu/kernels/jacobi.ts), n ≤ JACOBI_MAX_N. */
  symmetricEigen({ m, values, vectors, batch, n }: SymmetricEigenArgs): void {
    if (n > JACOBI_MAX_N) {
      throw new ShapeError(`webgpu symmetricEigen: matrices of n = ${n} exceed the kernel's limit of n ≤ ${JACOBI_MAX_N}`);
    }
    this.need("symmetricEigen", m, batch * n * n, "m");
    this.need("symmetricEigen", values, batch * n, "values");
    this.need("symmetricEigen", vectors, batch * n * n, "vectors");
    this.rows(symmetricEigenKernel, batch, [m, values, vectors], { batch, n });
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
 * A WebGPU backend on the runtime's adapter (navigator.gpu in Deno and browsers), or on a
 * `gpu` object the caller brings (in Node: the optional npm `webgpu` package's `create([])`).
 * Throws WebGPUUnavailableError saying why there is none: no WebGPU API, no adapter, only a
 * software (fallback) adapter while allowFallback is off, or a device the adapter refused.
 * optionalFeatures are requested where the adapter has them.
 */
export async function acquireWebGPU(
  opts: { allowFallback?: boolean; gpu?: GPU; optionalFeatures?: readonly GPUFeatureName[] } = {},
): Promise<WebGPUBackend> {
  const gpu = opts.gpu ?? gpuApi();
  if (!gpu) {
    throw new WebGPUUnavailableError("no-api", "WebGPU is not available: this runtime has no navigator.gpu (Deno and browsers have it; " +
      "in Node, install the optional npm package `webgpu` and pass its GPU as { gpu: create([]) })");
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new WebGPUUnavailableError("no-adapter", "WebGPU found no adapter: navigator.gpu.requestAdapter() returned null " +
      "(no GPU, or no driver this runtime can use; for a CPU Vulkan, install Mesa's lavapipe: mesa-vulkan-drivers)");
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean } | undefined;
  const isFallback = info?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  const description = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || "unknown adapter";
  if (isFallback && !opts.allowFallback) {
    throw new WebGPUUnavailableError("software-adapter", `WebGPU's only adapter is a software one (${description}), slower than ` +
      "the CPU backend; allow it with { allowSoftware: true } (CLI: --backend webgpu) or stay on the CPU");
  }
  const l = adapter.limits;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      // Those the adapter has of optionalFeatures: "timestamp-query" for gpu/profiler.ts.
      requiredFeatures: (opts.optionalFeatures ?? []).filter((f) => adapter.features.has(f)),
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    });
  } catch (error) {
    throw new WebGPUUnavailableError("device-refused", `WebGPU adapter ${description} refused a device: ${(error as Error).message}`);
  }
  const context = new GpuContext(device, TYPED_ERRORS);
  // A software adapter's "GPU" is this machine's CPU, and Mesa's lavapipe waits on the host
  // for the previous submit before it takes the next: submitting in parts only adds waits.
  // Its few threads are busy with few workgroups, so the GEMMs take larger tiles.
  if (isFallback) {
    context.dispatchesPerSubmit = MAX_DISPATCHES_PER_SUBMIT;
    context.busyWorkgroups = CPU_ADAPTER_WORKGROUPS;
  }
  return new WebGPUBackend(context, description);
}

/** acquireWebGPU, or null where no (acceptable) adapter exists. */
export async function createWebGPUBackend(
  opts: { allowFallback?: boolean; gpu?: GPU; optionalFeatures?: readonly GPUFeatureName[] } = {},
): Promise<WebGPUBackend | null> {
  try {
    return await acquireWebGPU(opts);
  } catch (error) {
    if (error instanceof WebGPUUnavailableError) return null;
    throw error;
  }
}
