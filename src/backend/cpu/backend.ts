/**
 * The CPU backend: the Backend interface on the AssemblyScript kernels (assembly/, compiled to
 * WebAssembly SIMD128; builds.ts), on every core. This file says, kernel by kernel, which
 * block of its output each part of a split call computes (runner.ts runs the parts on the
 * threads): gemm by rows (or columns) of C, convolution forward / input gradient by images,
 * weight gradient by input-channel blocks, batch norm by channels, pooling by planes,
 * elementwise ops, unary ops, Bernoulli fills and SGD by contiguous ranges, broadcasts (binary,
 * where) and broadcast reductions along their outermost dimension (reductions only over output
 * elements), axis reductions by blocks of their outer or inner outputs. Each output element
 * is computed by one thread with the 1-thread summation order, so results are bitwise the same
 * for every thread count. Memory: heap.ts; per-thread scratch: scratch.ts.
 */
import {
  type AxisReduction, type AxisView, type Backend, type BatchNormBackwardArgs, type BatchNormEvalArgs,
  type BatchNormTrainArgs, type BinaryOp, type Broadcast4, type BroadcastSelect, type ConvGeometry, type DeviceBuffer,
  type Distribution, type DrawPosition, type GemmArgs, type MemoryInfo, type PoolGeometry, type SgdOptions,
  type SgdParam, type SoftmaxXentArgs, type SymmetricEigenArgs, UNARY_OPS, type UnaryOp, type UnaryParams, unaryScalars,
} from "../backend.ts";
import type { KernelArgs, KernelName } from "./abi.ts";
import { checkConvAlgorithm, type ConvAlgorithm, DEFAULT_CONV_ALGORITHM, wantsWinograd } from "./conv_algorithm.ts";
import type { KernelModules } from "./builds.ts";
import type { WasmBuffer } from "./heap.ts";
import { MIN_ELEMENTS, MIN_FLOPS, PARTS_PER_THREAD, ranges, Runner } from "./runner.ts";
import { symmetricEigen } from "./jacobi.ts";
import { followThreads, type Threaded } from "./threads.ts";

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

type Conv = [number, number, number, number, number, number, number, number, number, number, number, number, number, number, number, number];

function convArgs(g: ConvGeometry): Conv {
  return [g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.G, g.OH, g.OW];
}

/** The op codes of assembly/elementwise.ts broadcast_binary. */
const BINARY_OPS: Record<BinaryOp, number> = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, eq: 6, ne: 7, lt: 8, le: 9, gt: 10, ge: 11,
};

/** The op codes of assembly/reduce_axis.ts reduce_axis. */
const AXIS_REDUCTIONS: Record<AxisReduction["op"], number> = { sum: 0, max: 1, min: 2 };

type Four = [number, number, number, number];

/**
 * Time to pack one float of an operand that every block of a split convolution packs again
 * (the filters of the direct forward and input gradient, dy in the direct weight gradient), in
 * multiply-adds' worth (flops at the kernels' ~40 GFLOP/s per core): 0.4–2.3 ns per filter float
 * measured on ResNet-18's deep layers (the flipped packing of the input gradient the dearest),
 * so about 64.
 */
const PACK_FLOAT_FLOPS = 64;

/**
 * Groups of images whose Winograd weight-gradient partial sums are added at the end: enough
 * that each of 2 threads takes 2 and one held back leaves work to the other, few enough that
 * the buffers (16·O·C floats a group, at most WINOGRAD_WEIGHT_FLOATS together) and their final
 * sum stay small. A constant, not the thread count: it fixes the summation order.
 */
const WINOGRAD_WEIGHT_GROUPS = 4;
const WINOGRAD_WEIGHT_FLOATS = 2 ** 22;

/** Kernels over n contiguous elements whose parts are the same call on offset pointers. */
type ElementwiseKernel = "fill" | "copy" | "axpy" | "scale" | "relu_forward" | "relu_backward" | "sigmoid_forward"
  | "sigmoid_backward" | "sgd_update" | "unary_forward" | "unary_backward" | "random_bernoulli";

export class CpuBackend implements Backend, Threaded {
  readonly name = "cpu";
  private readonly runner: Runner;
  private algorithm: ConvAlgorithm = DEFAULT_CONV_ALGORITHM;

  constructor(
    /** The kernel builds this backend may run. */
    modules: KernelModules,
    /** Start on the relaxed-SIMD build (see setDeterministic); it must be compiled already. */
    relaxed = false,
  ) {
    this.runner = new Runner(modules, relaxed);
    this.resetPeak();
    followThreads(this);
  }

  /** Run the register-only madd loop of assembly/simd.ts (for the bench's peak figure). */
  simdPeak(iters: number): number {
    return this.runner.k.simd_peak(iters);
  }

  /** Switch kernel builds (see setDeterministic in index.ts); buffers keep their contents. */
  setRelaxedSimd(on: boolean): Promise<boolean> {
    return this.runner.setRelaxedSimd(on);
  }

  /** Take up a new choice of the plain build's tile loads (see setTileLoads in index.ts). */
  refreshTileLoads(): Promise<void> {
    return this.runner.refreshTileLoads();
  }

  /** The tile-load shape (1: shuffles) of each thread's kernel instance, this one first (diagnostics). */
  tileLoadsByThread(): number[] {
    return this.runner.tileLoadsByThread();
  }

  /** The algorithm of the 3×3 stride-1 convolutions (see conv_algorithm.ts); DEFAULT_CONV_ALGORITHM at first. */
  get convAlgorithm(): ConvAlgorithm {
    return this.algorithm;
  }
  set convAlgorithm(a: ConvAlgorithm) {
    this.algorithm = checkConvAlgorithm(a);
  }

  /** Run on `n` threads (1: stop the workers). Called by setThreads() in threads.ts. */
  setThreadCount(n: number): Promise<void> {
    return this.runner.setThreadCount(n);
  }

  /** Kernel calls that were split across threads (for tests and diagnostics). */
  get splitCalls(): number {
    return this.runner.splitCalls;
  }
  /** Parts of the last split call that the calling thread ran; the workers ran the rest (diagnostics). */
  get lastMine(): number {
    return this.runner.lastMine;
  }

  private exec<K extends KernelName>(kernel: K, parts: KernelArgs<K>[], colFloats = -1): void {
    this.runner.exec(kernel, parts, colFloats);
  }

  /** An elementwise kernel over n elements, split into contiguous 16-element-aligned ranges. */
  private elementwise<K extends ElementwiseKernel>(kernel: K, n: number, args: (s: number, len: number) => KernelArgs<K>): void {
    this.exec(kernel, ranges(n, this.runner.parts(n, MIN_ELEMENTS), 16).map(([s, e]) => args(s, e - s)));
  }

  private p(buf: DeviceBuffer | null): number {
    return buf === null ? 0 : (buf as WasmBuffer).ptr;
  }

  // ---- memory ----

  alloc(length: number): DeviceBuffer {
    return this.runner.heap.alloc(length);
  }
  free(buf: DeviceBuffer): void {
    this.runner.heap.free(buf as WasmBuffer);
  }
  write(buf: DeviceBuffer, data: Float32Array | Int32Array): void {
    const b = buf as WasmBuffer;
    new Uint8Array(this.runner.memory.buffer, b.ptr, b.length * 4)
      .set(new Uint8Array(data.buffer, data.byteOffset, b.length * 4));
  }
  readSync(buf: DeviceBuffer): Float32Array {
    const b = buf as WasmBuffer;
    return new Float32Array(this.runner.memory.buffer, b.ptr, b.length).slice();
  }
  read(buf: DeviceBuffer): Promise<Float32Array> {
    return Promise.resolve(this.readSync(buf));
  }
  memory(): MemoryInfo {
    return this.runner.heap.info();
  }
  resetPeak(): void {
    this.runner.heap.resetPeak();
  }

  // ---- data movement and random fills ----

  fill(y: DeviceBuffer, value: number): void {
    const py = this.p(y);
    this.elementwise("fill", y.length, (s, n) => [py + 4 * s, n, value]);
  }
  copy(x: DeviceBuffer, y: DeviceBuffer): void {
    const px = this.p(x), py = this.p(y);
    this.elementwise("copy", y.length, (s, n) => [px + 4 * s, py + 4 * s, n]);
  }
  axpy(alpha: number, x: DeviceBuffer, y: DeviceBuffer): void {
    const px = this.p(x), py = this.p(y);
    this.elementwise("axpy", y.length, (s, n) => [n, alpha, px + 4 * s, py + 4 * s]);
  }
  scale(x: DeviceBuffer, y: DeviceBuffer, alpha: number): void {
    const px = this.p(x), py = this.p(y);
    this.elementwise("scale", y.length, (s, n) => [px + 4 * s, py + 4 * s, n, alpha]);
  }
  random(y: DeviceBuffer, dist: Distribution, at: DrawPosition): void {
    const k = this.runner.k;
    if (dist.kind === "uniform") k.random_uniform(this.p(y), y.length, dist.low, dist.high, at.key, at.counter);
    else if (dist.kind === "normal") k.random_normal(this.p(y), y.length, dist.mean, dist.std, at.key, at.counter);
    else {
      // element i is draw counter + i wherever its block starts
      const py = this.p(y);
      this.elementwise("random_bernoulli", y.length, (s, n) => [py + 4 * s, n, dist.p, at.key, at.counter + s]);
    }
  }

  // ---- gemm and convolution ----

  gemm({ transA, transB, M, N, K, alpha, a, b, beta, c }: GemmArgs): void {
    const lda = transA ? M : K;
    const ldb = transB ? K : N;
    const pA = this.p(a), pB = this.p(b), pC = this.p(c);
    const parts = this.runner.parts(2 * M * N * K, MIN_FLOPS);
    // Each C element is the same k-ordered sum whichever block of rows or columns it is in.
    this.exec("gemm", M >= N
      ? ranges(M, parts, 4).map(([m0, m1]) => [
        +transA, +transB, m1 - m0, N, K, alpha, pA + 4 * (transA ? m0 : m0 * lda), lda, pB, ldb, beta, pC + 4 * m0 * N, N,
      ])
      : ranges(N, parts, 8).map(([n0, n1]) => [
        +transA, +transB, M, n1 - n0, K, alpha, pA, lda, pB + 4 * (transB ? n0 * ldb : n0), ldb, beta, pC + 4 * n0, N,
      ]));
  }

  /** Col scratch floats of one conv kernel call over `images` images (the kernels' own rule). */
  private colFloats(kind: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7, g: ConvGeometry, images = g.N): number {
    const dims = convArgs(g);
    dims[0] = images;
    return this.runner.k.conv_scratch_floats(kind, ...dims);
  }
  private convFlops(g: ConvGeometry): number {
    return 2 * g.N * g.O * (g.C / g.G) * g.KH * g.KW * g.OH * g.OW;
  }
  /**
   * How many blocks to cut a convolution of `flops` into when every block packs the same
   * `repeatedFloats` again: no more than keep that repeated work (PACK_FLOAT_FLOPS a float) under
   * 1/16 of the call's multiply-adds, never fewer than one per thread.
   */
  private affordableBlocks(flops: number, repeatedFloats: number): number {
    const parts = this.runner.parts(flops, MIN_FLOPS);
    return Math.min(parts, Math.max(this.runner.threads, Math.floor(flops / 16 / (PACK_FLOAT_FLOPS * repeatedFloats))));
  }
  /**
   * The image blocks of a forward or input-gradient call. Every block of the direct kernels
   * packs the whole filter bank again, and on deep layers with small planes that is no small
   * cost: cut as for 2 threads but run on one (bench/step_profile.ts, 1x2), ResNet-18's
   * 512-channel 4×4 input gradient took 1.33× as long, the forward 1.07×, the 256-channel 8×8
   * ones 1.18× and 1.05×; so their blocks are affordableBlocks. The Winograd kernels read filters
   * transformed once per call (`filtersOnce`): nothing is repeated per block.
   */
  private imageBlocks(g: ConvGeometry, filtersOnce: boolean): [number, number][] {
    const flops = this.convFlops(g);
    const blocks = filtersOnce ? this.runner.parts(flops, MIN_FLOPS) : this.affordableBlocks(flops, g.O * (g.C / g.G) * g.KH * g.KW);
    return ranges(g.N, blocks, 1);
  }
  /**
   * Forward-type conv kernels split by images: x-side and y-side tensors offset per image. The
   * Winograd kernel of the same pass where the algorithm asks for it and the kernel applies
   * (its scratch rule says -1 where it does not); its filters are transformed first, split by
   * reduction channels, into a buffer all the image blocks read.
   */
  private convByImages(
    pass: "forward" | "backwardInput", src: number, srcImg: number, w: number,
    dst: number, dstImg: number, g: ConvGeometry,
  ): void {
    const forward = pass === "forward";
    const bankFloats = wantsWinograd(this.algorithm, pass, g) ? this.colFloats(forward ? 6 : 7, g) : -1;
    const blocks = this.imageBlocks(g, bankFloats >= 0);
    const images = Math.max(...blocks.map(([n0, n1]) => n1 - n0));
    const dims = (n0: number, n1: number): Conv => {
      const d = convArgs(g);
      d[0] = n1 - n0;
      return d;
    };
    if (bankFloats < 0) {
      const kernel = forward ? "conv2d_forward" : "conv2d_backward_input";
      const parts = blocks.map(([n0, n1]): KernelArgs<typeof kernel> => [src + 4 * n0 * srcImg, w, dst + 4 * n0 * dstImg, 0, ...dims(n0, n1)]);
      return this.exec(kernel, parts, this.colFloats(forward ? 0 : 1, g, images));
    }
    const u = this.runner.shared(bankFloats);
    const K = forward ? g.C : g.O;
    this.exec("winograd_filters", ranges(K, this.runner.parts(bankFloats, MIN_ELEMENTS), 1)
      .map(([k0, k1]) => [w, u, g.C, g.O, +!forward, k0, k1]));
    const kernel = forward ? "conv2d_forward_winograd" : "conv2d_backward_input_winograd";
    const parts = blocks.map(([n0, n1]): KernelArgs<typeof kernel> => [src + 4 * n0 * srcImg, u, dst + 4 * n0 * dstImg, 0, ...dims(n0, n1)]);
    this.exec(kernel, parts, this.colFloats(forward ? 3 : 4, g, images));
  }
  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void {
    this.convByImages("forward", this.p(x), g.C * g.H * g.W, this.p(w), this.p(y), g.O * g.OH * g.OW, g);
  }
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void {
    this.convByImages("backwardInput", this.p(dy), g.O * g.OH * g.OW, this.p(w), this.p(dx), g.C * g.H * g.W, g);
  }
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void {
    // Split by input channels: every thread sums its dw columns over the whole batch in order.
    // Blocks of channels whose dw columns (channels·KH·KW) fill whole 8-column gemm strips
    // where the layer is wide enough: narrow or ragged blocks waste the micro-kernel's lanes.
    // The direct kernel packs all of dy in every block (ResNet-18's 256-channel 8×8 layer took
    // 1.07× as long cut for 2 threads on one, the stem's 3 one-channel blocks 1.6×), so its
    // blocks are affordableBlocks.
    const pdy = this.p(dy), px = this.p(x), pdw = this.p(dw);
    let align = 8 / gcd(g.KH * g.KW, 8);
    if (g.C < 2 * align) align = 1;
    // Winograd where asked and where it applies (its scratch, for all channels, is -1 otherwise).
    const winograd = wantsWinograd(this.algorithm, "backwardWeight", g) ? this.colFloats(5, g) : -1;
    if (winograd >= 0) return this.winogradWeightGradient(pdy, px, pdw, g, align, winograd);
    const blocks = this.affordableBlocks(this.convFlops(g), g.O * g.N * g.OH * g.OW);
    const parts = ranges(g.C, blocks, align)
      .map(([c0, c1]): KernelArgs<"conv2d_backward_weight"> => [pdy, px, pdw, 0, ...convArgs(g), c0, c1]);
    this.exec("conv2d_backward_weight", parts, this.colFloats(2, g));
  }
  /**
   * The Winograd weight gradient in two steps: partial sums in the Winograd domain over fixed
   * groups of images (WINOGRAD_WEIGHT_GROUPS, fewer where their buffers would pass
   * WINOGRAD_WEIGHT_FLOATS; the groups depend on the shape only, so the bits do not depend on
   * the thread count), each group one part (or, where there are fewer groups than threads,
   * blocks of its channels); then dw from their sum, split by output channels.
   */
  private winogradWeightGradient(pdy: number, px: number, pdw: number, g: ConvGeometry, align: number, colFloats: number): void {
    const groupFloats = 16 * g.O * g.C;
    const wanted = Math.min(WINOGRAD_WEIGHT_GROUPS, Math.floor(WINOGRAD_WEIGHT_FLOATS / groupFloats));
    const groups = ranges(g.N, Math.max(1, wanted), 1);
    const du = this.runner.shared(groups.length * groupFloats);
    const blocks = ranges(g.C, Math.ceil(this.runner.parts(this.convFlops(g), MIN_FLOPS) / PARTS_PER_THREAD / groups.length), align);
    const parts = groups.flatMap(([n0, n1], i) => blocks.map(([c0, c1]): KernelArgs<"conv2d_backward_weight_winograd"> =>
      [pdy, px, du + 4 * i * groupFloats, 0, ...convArgs(g), n0, n1, c0, c1]));
    this.exec("conv2d_backward_weight_winograd", parts, colFloats);
    this.exec("winograd_weight_output", ranges(g.O, this.runner.parts(groups.length * groupFloats, MIN_ELEMENTS), 1)
      .map(([m0, m1]) => [du, groups.length, pdw, g.C, g.O, m0, m1]));
  }

  // ---- batch norm ----

  /** Per-channel kernels split into channel blocks [c0, c1) (the last two arguments). */
  private byChannels<K extends KernelName>(kernel: K, N: number, C: number, HW: number, args: (c0: number, c1: number) => KernelArgs<K>): void {
    this.exec(kernel, ranges(C, this.runner.parts(N * C * HW, MIN_ELEMENTS), 1).map(([c0, c1]) => args(c0, c1)));
  }

  /** Both training forwards are one kernel; the residual add and the ReLU are its epilogue. */
  private trainForward(a: BatchNormTrainArgs, residual: DeviceBuffer | null, relu: boolean): void {
    const r = a.running;
    const fixed = [
      this.p(a.x), this.p(a.gamma), this.p(a.beta), this.p(residual), this.p(a.y), this.p(a.saveMean), this.p(a.saveInvstd),
      this.p(r?.mean ?? null), this.p(r?.var ?? null), a.N, a.C, a.HW, r?.momentum ?? 0, a.eps, r ? 1 : 0, +relu,
    ] as const;
    this.byChannels("batchnorm_train_forward", a.N, a.C, a.HW, (c0, c1) => [...fixed, c0, c1]);
  }
  batchNormTrainForward(a: BatchNormTrainArgs): void {
    this.trainForward(a, null, false);
  }
  batchNormReluTrainForward(a: BatchNormTrainArgs & { residual: DeviceBuffer | null }): void {
    this.trainForward(a, a.residual, true);
  }
  batchNormEvalForward(a: BatchNormEvalArgs): void {
    const fixed = [
      this.p(a.x), this.p(a.gamma), this.p(a.beta), this.p(a.residual), this.p(a.runningMean), this.p(a.runningVar),
      this.p(a.y), a.N, a.C, a.HW, a.eps, +a.relu,
    ] as const;
    this.byChannels("batchnorm_eval_forward", a.N, a.C, a.HW, (c0, c1) => [...fixed, c0, c1]);
  }
  batchNormBackward(a: BatchNormBackwardArgs): void {
    if (a.stats.kind === "batch") return this.batchStatsBackward(a, null, null);
    const fixed = [
      this.p(a.dy), this.p(a.x), this.p(a.gamma), this.p(a.stats.mean), this.p(a.stats.var), this.p(a.dx),
      this.p(a.dgamma), this.p(a.dbeta), a.N, a.C, a.HW, a.eps,
    ] as const;
    this.byChannels("batchnorm_eval_backward", a.N, a.C, a.HW, (c0, c1) => [...fixed, c0, c1]);
  }
  batchNormReluBackward(a: BatchNormBackwardArgs & { y: DeviceBuffer; dresidual: DeviceBuffer | null }): void {
    this.batchStatsBackward(a, a.y, a.dresidual);
  }
  /** The batch-statistics backward, masked by a ReLU's output y when given (one kernel either way). */
  private batchStatsBackward(a: BatchNormBackwardArgs, y: DeviceBuffer | null, dresidual: DeviceBuffer | null): void {
    if (a.stats.kind !== "batch") throw new Error("batch-norm backward: needs the batch statistics");
    const fixed = [
      this.p(a.dy), this.p(y), this.p(a.x), this.p(a.gamma), this.p(a.stats.mean), this.p(a.stats.invstd), this.p(a.dx),
      this.p(a.dgamma), this.p(a.dbeta), this.p(dresidual), a.N, a.C, a.HW,
    ] as const;
    this.byChannels("batchnorm_backward", a.N, a.C, a.HW, (c0, c1) => [...fixed, c0, c1]);
  }

  // ---- elementwise, broadcasts, reductions ----

  reluForward(x: DeviceBuffer, y: DeviceBuffer): void {
    const px = this.p(x), py = this.p(y);
    this.elementwise("relu_forward", y.length, (s, n) => [px + 4 * s, py + 4 * s, n]);
  }
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    const py = this.p(y), pdy = this.p(dy), pdx = this.p(dx);
    this.elementwise("relu_backward", dx.length, (s, n) => [py + 4 * s, pdy + 4 * s, pdx + 4 * s, n]);
  }
  sigmoidForward(x: DeviceBuffer, y: DeviceBuffer): void {
    const px = this.p(x), py = this.p(y);
    this.elementwise("sigmoid_forward", y.length, (s, n) => [px + 4 * s, py + 4 * s, n]);
  }
  sigmoidBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    const py = this.p(y), pdy = this.p(dy), pdx = this.p(dx);
    this.elementwise("sigmoid_backward", dx.length, (s, n) => [py + 4 * s, pdy + 4 * s, pdx + 4 * s, n]);
  }
  /**
   * Split a rank-4 broadcast along its outermost dimension of size > 1 (all before it are 1):
   * the block [s, e) of that dimension is the same loop on offset pointers.
   */
  private outerSplit(dims: readonly number[]): { axis: number; inner: number; parts: number } {
    const total = dims[0] * dims[1] * dims[2] * dims[3];
    let axis = 0;
    while (axis < 3 && dims[axis] === 1) axis++;
    let inner = 1;
    for (let i = axis + 1; i < 4; i++) inner *= dims[i];
    return { axis, inner, parts: this.runner.parts(total, MIN_ELEMENTS) };
  }
  /**
   * The parts of a broadcast kernel: blocks [s, e) of the outermost dimension of size > 1,
   * each with its dims and every operand's pointer (and y's) moved to the block's start.
   */
  private broadcastParts(dims: Four, operands: [number, Four][], y: number): { dims: Four; at: number[]; y: number }[] {
    const { axis, inner, parts } = this.outerSplit(dims);
    return ranges(dims[axis], parts, axis === 3 ? 16 : 1).map(([s, e]) => {
      const block: Four = [...dims];
      block[axis] = e - s;
      return { dims: block, at: operands.map(([p, strides]) => p + 4 * s * strides[axis]), y: y + 4 * s * inner };
    });
  }
  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const parts = this.broadcastParts(bc.dims, [[this.p(a), bc.aStrides], [this.p(b), bc.bStrides]], this.p(y));
    this.exec("broadcast_binary", parts.map(({ dims, at: [pa, pb], y: py }) => [
      BINARY_OPS[op], pa, pb, py, ...dims, ...bc.aStrides, ...bc.bStrides,
    ]));
  }
  where(cond: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: BroadcastSelect): void {
    const operands: [number, Four][] = [[this.p(cond), bc.cStrides], [this.p(a), bc.aStrides], [this.p(b), bc.bStrides]];
    this.exec("broadcast_where", this.broadcastParts(bc.dims, operands, this.p(y)).map(({ dims, at: [pc, pa, pb], y: py }) => [
      pc, pa, pb, py, ...dims, ...bc.cStrides, ...bc.aStrides, ...bc.bStrides,
    ]));
  }
  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const px = this.p(x), py = this.p(y);
    const { axis, inner, parts } = this.outerSplit(bc.dims);
    const ys = bc.aStrides[axis];
    // only over output elements: the split axis must be kept (not summed) in y
    if (ys === 0 || y.length !== bc.dims[axis] * ys) {
      return this.exec("reduce_broadcast", [[px, py, y.length, ...bc.dims, ...bc.aStrides]]);
    }
    this.exec("reduce_broadcast", ranges(bc.dims[axis], parts, axis === 3 ? 16 : 1).map(([s, e]) => {
      const dims: [number, number, number, number] = [...bc.dims];
      dims[axis] = e - s;
      return [px + 4 * s * inner, py + 4 * s * ys, (e - s) * ys, ...dims, ...bc.aStrides];
    }));
  }
  unary(op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, params: UnaryParams): void {
    const code = UNARY_OPS.indexOf(op), [p0, p1] = unaryScalars(op, params);
    const px = this.p(x), py = this.p(y);
    this.elementwise("unary_forward", y.length, (s, n) => [code, px + 4 * s, py + 4 * s, n, p0, p1]);
  }
  unaryBackward(op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, params: UnaryParams): void {
    const code = UNARY_OPS.indexOf(op), [p0, p1] = unaryScalars(op, params);
    const px = this.p(x), py = this.p(y), pdy = this.p(dy), pdx = this.p(dx);
    this.elementwise("unary_backward", dx.length, (s, n) => [
      code, px + 4 * s, py + 4 * s, pdy + 4 * s, pdx + 4 * s, n, p0, p1,
    ]);
  }

  /**
   * Blocks of an axis reduction's outputs: [o0, o1) × every inner output, or every outer ×
   * [i0, i1) of the inner ones (4-aligned), whichever the shape cuts into more blocks. `part`
   * gets the block's first outer and inner output and its extents.
   */
  private byOutputs<K extends KernelName>(
    { outer, size, inner }: AxisView, kernel: K, part: (o0: number, i0: number, outers: number, inners: number) => KernelArgs<K>,
  ): void {
    const parts = this.runner.parts(outer * size * inner, MIN_ELEMENTS);
    this.exec(kernel, outer >= Math.ceil(inner / 4)
      ? ranges(outer, parts, 1).map(([o0, o1]) => part(o0, 0, o1 - o0, inner))
      : ranges(inner, parts, 4).map(([i0, i1]) => part(0, i0, outer, i1 - i0)));
  }
  reduceAxis(x: DeviceBuffer, y: DeviceBuffer, view: AxisView, r: AxisReduction): void {
    const { size, inner } = view;
    const px = this.p(x), py = this.p(y), pi = r.op === "sum" ? 0 : this.p(r.indices);
    const divisor = r.op === "sum" ? r.divisor : 1;
    this.byOutputs(view, "reduce_axis", (o0, i0, outers, inners) => [
      AXIS_REDUCTIONS[r.op], px + 4 * (o0 * size * inner + i0), py + 4 * (o0 * inner + i0),
      pi === 0 ? 0 : pi + 4 * (o0 * inner + i0), outers, size, inners, inner, divisor,
    ]);
  }
  scatterAxis(dy: DeviceBuffer, indices: DeviceBuffer, dx: DeviceBuffer, view: AxisView): void {
    const { size, inner } = view;
    const pdy = this.p(dy), pi = this.p(indices), pdx = this.p(dx);
    this.byOutputs(view, "scatter_axis", (o0, i0, outers, inners) => [
      pdy + 4 * (o0 * inner + i0), pi + 4 * (o0 * inner + i0), pdx + 4 * (o0 * size * inner + i0), outers, size, inners, inner,
    ]);
  }

  dropoutForward(x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, at: DrawPosition): void {
    this.runner.k.dropout_forward(this.p(x), this.p(y), this.p(mask), y.length, p, at.key, at.counter);
  }

  // ---- pooling ----

  /** Pooling kernels split by planes (n, c): each block is N = planes, C = 1 on offset pointers. */
  private byPlanes<K extends KernelName>(kernel: K, g: PoolGeometry, args: (p0: number, planes: number) => KernelArgs<K>): void {
    const planes = g.N * g.C;
    this.exec(kernel, ranges(planes, this.runner.parts(planes * g.H * g.W, MIN_ELEMENTS), 1).map(([p0, p1]) => args(p0, p1 - p0)));
  }
  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void {
    const px = this.p(x), py = this.p(y), pa = this.p(argmax);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    this.byPlanes("maxpool_forward", g, (p0, n) => [
      px + 4 * p0 * HW, py + 4 * p0 * OHW, pa + 4 * p0 * OHW, n, 1, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW,
    ]);
  }
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void {
    const pdy = this.p(dy), pa = this.p(argmax), pdx = this.p(dx);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    this.byPlanes("maxpool_backward", g, (p0, n) => [pdy + 4 * p0 * OHW, pa + 4 * p0 * OHW, pdx + 4 * p0 * HW, n, 1, g.H, g.W, g.OH, g.OW]);
  }
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void {
    const px = this.p(x), py = this.p(y);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    this.byPlanes("avgpool_forward", g, (p0, n) => [
      px + 4 * p0 * HW, py + 4 * p0 * OHW, n, 1, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, +g.countIncludePad,
    ]);
  }
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void {
    const pdy = this.p(dy), pdx = this.p(dx);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    this.byPlanes("avgpool_backward", g, (p0, n) => [
      pdy + 4 * p0 * OHW, pdx + 4 * p0 * HW, n, 1, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, +g.countIncludePad,
    ]);
  }

  // ---- loss and optimiser ----

  softmaxCrossEntropy(a: SoftmaxXentArgs, losses: DeviceBuffer): void {
    this.runner.k.softmax_xent_forward(this.p(a.logits), this.p(a.labels), this.p(losses), a.N, a.C, a.smoothing);
  }
  softmaxCrossEntropyBackward(a: SoftmaxXentArgs, dlogits: DeviceBuffer, alpha: number, scale: number): void {
    this.runner.k.softmax_xent_backward(
      this.p(a.logits), this.p(a.labels), this.p(dlogits), a.N, a.C, a.smoothing, alpha, scale,
    );
  }

  /** Host code in float64 (jacobi.ts), one matrix at a time: the matrices are small. */
  symmetricEigen({ m, values, vectors, batch, n }: SymmetricEigenArgs): void {
    const data = this.readSync(m);
    const allValues = new Float32Array(batch * n), allVectors = new Float32Array(batch * n * n);
    for (let b = 0; b < batch; b++) {
      const d = symmetricEigen(data.subarray(b * n * n, (b + 1) * n * n), n);
      allValues.set(d.values, b * n);
      allVectors.set(d.vectors, b * n * n);
    }
    this.write(values, allValues);
    this.write(vectors, allVectors);
  }

  /** A wasm call has no launch cost to amortise, so the CPU keeps one kernel call per parameter. */
  sgdStep(params: readonly SgdParam[], o: SgdOptions): void {
    for (const { param, grad, momentum, firstStep } of params) {
      const pp = this.p(param), pg = this.p(grad), pm = this.p(momentum);
      this.elementwise("sgd_update", param.length, (s, n) => [
        pp + 4 * s, pg + 4 * s, pm === 0 ? 0 : pm + 4 * s, n, o.lr, o.momentum,
        o.dampening, o.weightDecay, +o.nesterov, +firstStep,
      ]);
    }
  }
}
