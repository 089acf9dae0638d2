/**
 * The CPU backend: the AssemblyScript kernels (assembly/, compiled to build/kernels.wasm)
 * run on one WebAssembly.Memory, and this file is the allocator and the typed doorway to
 * them. The wasm bytes travel inside the module graph (build/kernels_wasm.ts, base64), so
 * loading needs no file system, fetch or permission: the same code runs in Deno, Node,
 * browsers and workers. Buffers are byte ranges of the linear memory handed out by a
 * size-class free list, so a training step that allocates the same shapes every time reuses
 * the same memory and never grows the heap after its first step.
 *
 * Threads (threads.ts): on the first `setThreads(n > 1)` the heap moves onto a shared
 * WebAssembly.Memory (copied byte for byte, so every buffer keeps its offset) and the kernels
 * are re-instantiated from the shared-memory build; n−1 workers run their own instances on the
 * same memory. Large kernels are split by output blocks — gemm by rows (or columns) of C,
 * convolution forward / input gradient by images, weight gradient by input-channel blocks,
 * batch norm by channels, pooling by planes, elementwise ops and SGD by contiguous ranges,
 * broadcasts and reductions along their outermost dimension (reductions only over output
 * elements) — so each output element is computed by one thread with the same summation
 * order as on one thread: results are bitwise the same for every thread count.
 *
 * Kernel builds (assembly/simd.ts): the plain SIMD128 build is the default because it gives
 * the same bits on every runtime and machine. `setDeterministic(false)` switches every CPU
 * backend to the relaxed-SIMD build (fused multiply-add in the gemm and convolution
 * micro-kernels) where the runtime validates it, detected then; the switch re-instantiates the
 * kernels over the same memory, so buffers survive it. Still the same bits for every thread
 * count, but no longer across machines or runtimes.
 */
import type {
  Backend, BinaryOp, Broadcast4, ConvGeometry, DeviceBuffer, MemoryInfo, PoolGeometry, SgdOptions, SgdParam,
} from "./backend.ts";
import { kernelsWasmBase64 } from "../../build/kernels_wasm.ts";
import { followThreads, MAX_PARTS, ThreadPool, threadsHost, type Threaded } from "./threads.ts";
import { OutOfMemoryError } from "../errors.ts";

/** The kernel exports, as compiled from assembly/index.ts. */
interface Kernels {
  gemm_scratch_bytes(): number;
  set_gemm_scratch(ptr: number): void;
  simd_peak(iters: number): number;
  gemm(ta: number, tb: number, M: number, N: number, K: number, alpha: number, A: number, lda: number,
    B: number, ldb: number, beta: number, C: number, ldc: number): void;
  conv2d_forward(x: number, w: number, y: number, col: number, ...dims: number[]): void;
  conv2d_backward_input(dy: number, w: number, dx: number, col: number, ...dims: number[]): void;
  conv2d_backward_weight(dy: number, x: number, dw: number, col: number, ...dimsAndRange: number[]): void;
  conv_scratch_floats(kind: number, ...dims: number[]): number;
  batchnorm_train_forward(x: number, g: number, b: number, res: number, y: number, m: number, is: number,
    rm: number, rv: number, N: number, C: number, HW: number, mom: number, eps: number, upd: number,
    relu: number, c0: number, c1: number): void;
  batchnorm_eval_forward(x: number, g: number, b: number, rm: number, rv: number, y: number,
    N: number, C: number, HW: number, eps: number, c0: number, c1: number): void;
  batchnorm_backward(dy: number, y: number, x: number, g: number, m: number, is: number, dx: number, dg: number,
    db: number, dres: number, N: number, C: number, HW: number, c0: number, c1: number): void;
  batchnorm_eval_backward(dy: number, x: number, g: number, rm: number, rv: number, dx: number,
    dg: number, db: number, N: number, C: number, HW: number, eps: number, c0: number, c1: number): void;
  relu_forward(x: number, y: number, n: number): void;
  relu_backward(y: number, dy: number, dx: number, n: number): void;
  sigmoid_forward(x: number, y: number, n: number): void;
  sigmoid_backward(y: number, dy: number, dx: number, n: number): void;
  broadcast_binary(op: number, a: number, b: number, y: number, ...dimsAndStrides: number[]): void;
  reduce_broadcast(x: number, y: number, ySize: number, ...dimsAndStrides: number[]): void;
  fill(y: number, n: number, v: number): void;
  copy(x: number, y: number, n: number): void;
  axpy(n: number, alpha: number, x: number, y: number): void;
  scale(x: number, y: number, n: number, alpha: number): void;
  dropout_forward(x: number, y: number, mask: number, n: number, p: number, key: number, ctr: number): void;
  random_uniform(y: number, n: number, lo: number, hi: number, key: number, ctr: number): void;
  random_normal(y: number, n: number, mean: number, std: number, key: number, ctr: number): void;
  maxpool_forward(x: number, y: number, argmax: number, ...geometry: number[]): void;
  maxpool_backward(dy: number, argmax: number, dx: number, N: number, C: number, H: number, W: number,
    OH: number, OW: number): void;
  avgpool_forward(x: number, y: number, ...geometryAndFlag: number[]): void;
  avgpool_backward(dy: number, dx: number, ...geometryAndFlag: number[]): void;
  softmax_xent_forward(z: number, labels: number, losses: number, N: number, C: number, eps: number): void;
  softmax_xent_backward(z: number, labels: number, dz: number, N: number, C: number, eps: number,
    alpha: number, scale: number): void;
  sgd_update(p: number, g: number, buf: number, n: number, lr: number, momentum: number,
    dampening: number, wd: number, nesterov: number, first: number): void;
}

/** A range of linear memory: `length` 4-byte elements at byte offset `ptr`. */
class WasmBuffer implements DeviceBuffer {
  constructor(readonly ptr: number, readonly length: number, readonly bytes: number) {}
}

const PAGE = 65536;
/** Bytes below this belong to the wasm module's static data. */
const HEAP_BASE = PAGE;
const ALIGN = 64;

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Round a request up to its size class: exact 64-byte steps for small buffers, and eight
 * classes per power of two above 64 KiB, so freed blocks are reused by similar requests
 * while waste stays under 12.5 %.
 */
function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= PAGE) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function geometryArgs(g: ConvGeometry): number[] {
  return [g.N, g.C, g.H, g.W, g.O, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.G, g.OH, g.OW];
}

function poolArgs(g: PoolGeometry): number[] {
  return [g.N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW];
}

function broadcastArgs(bc: Broadcast4, strides: [number, number, number, number]): number[] {
  return [...bc.dims, ...strides];
}

const BINARY_OPS: Record<BinaryOp, number> = { add: 0, sub: 1, mul: 2, div: 3 };

/** Kernels the threaded path may hand to workers (the worker protocol indexes this list). */
const THREADED_KERNELS = [
  "gemm", "conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
  "batchnorm_train_forward", "batchnorm_eval_forward", "batchnorm_backward", "batchnorm_eval_backward",
  "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "broadcast_binary",
  "reduce_broadcast", "fill", "copy", "axpy", "scale", "maxpool_forward", "maxpool_backward",
  "avgpool_forward", "avgpool_backward", "sgd_update",
] as const;
type ThreadedKernel = typeof THREADED_KERNELS[number];
const KERNEL_INDEX = new Map<string, number>(THREADED_KERNELS.map((n, i) => [n, i]));

/**
 * Smallest work worth waking the workers for (measured on 2 cores: a wake-up and join costs
 * tens of microseconds): floating-point operations for gemm / convolution, elements touched
 * for everything else.
 */
const MIN_FLOPS = 2 ** 21;
const MIN_ELEMENTS = 2 ** 16;
/** Parts per thread of a split kernel (threads claim parts dynamically). */
const PARTS_PER_THREAD = 4;

export class CpuBackend implements Backend, Threaded {
  readonly name = "cpu";
  private memoryObject: WebAssembly.Memory;
  private k: Kernels;
  private gemmScratch = 0;
  /** The pool of worker threads (null: one thread). */
  private pool: ThreadPool | null = null;
  private poolReady: Promise<void> = Promise.resolve();
  /** Per-worker gemm packing scratch and im2col scratch (index = worker), kept across pools. */
  private readonly workerGemmScratch: number[] = [];
  private readonly workerCol: (WasmBuffer | null)[] = [];
  private top = HEAP_BASE;
  private readonly freeLists = new Map<number, number[]>();
  private bytesInUse = 0;
  private peakBytes = 0;
  private liveBuffers = 0;
  /** Grow-only im2col scratch, shared by every convolution (one runs at a time). */
  private colScratch: WasmBuffer | null = null;

  constructor(
    /** The kernel builds this backend may run. */
    private readonly modules: KernelModules,
    /** Start on the relaxed-SIMD build (see setDeterministic); it must be compiled already. */
    private relaxed = false,
  ) {
    this.memoryObject = new WebAssembly.Memory({ initial: 256, maximum: 65536 });
    const instance = new WebAssembly.Instance(this.module(false)!, { env: { memory: this.memoryObject } });
    this.k = instance.exports as unknown as Kernels;
    const scratch = this.alloc(Math.ceil(this.k.gemm_scratch_bytes() / 4)) as WasmBuffer;
    this.gemmScratch = scratch.ptr;
    this.k.set_gemm_scratch(scratch.ptr);
    this.resetPeak();
    followThreads(this);
    cpuBackends.add(new WeakRef(this));
  }

  private isShared(): boolean {
    return typeof SharedArrayBuffer === "function" && this.memoryObject.buffer.constructor === SharedArrayBuffer;
  }

  /** The build to instantiate for the current setting and memory (null: unavailable here). */
  private module(shared: boolean): WebAssembly.Module | null {
    const m = this.modules;
    if (!shared) return this.relaxed ? m.relaxed() : m.plain;
    return this.relaxed ? m.relaxedShared() : m.plainShared();
  }

  /** Run the register-only madd loop of assembly/simd.ts (for the bench's peak figure). */
  simdPeak(iters: number): number {
    return this.k.simd_peak(iters);
  }

  /**
   * Run the relaxed-SIMD build (true) or the plain one (false); returns the setting in effect
   * (false where the runtime lacks relaxed SIMD). Buffers keep their contents; the workers are
   * restarted on the new build.
   */
  async setRelaxedSimd(on: boolean): Promise<boolean> {
    if (on === this.relaxed) return on;
    this.relaxed = on;
    const module = this.module(this.isShared());
    if (!module) return (this.relaxed = !on);
    this.k = new WebAssembly.Instance(module, { env: { memory: this.memoryObject } }).exports as unknown as Kernels;
    this.k.set_gemm_scratch(this.gemmScratch);
    const workers = this.poolWorkers;
    if (workers > 0) {
      this.pool!.stop();
      this.pool = null;
      this.poolWorkers = 0;
      await this.setThreadCount(workers + 1);
    }
    return this.relaxed;
  }

  /** Move the heap onto a shared memory and the shared-memory kernels (false: not possible here). */
  private ensureShared(): boolean {
    if (this.isShared()) return true;
    const module = this.module(true);
    if (!module) return false;
    let memory: WebAssembly.Memory;
    try {
      const pages = this.memoryObject.buffer.byteLength / PAGE;
      memory = new WebAssembly.Memory({ initial: pages, maximum: 65536, shared: true });
      new Uint8Array(memory.buffer).set(new Uint8Array(this.memoryObject.buffer));
    } catch {
      return false;
    }
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    this.memoryObject = memory;
    this.k = instance.exports as unknown as Kernels;
    this.k.set_gemm_scratch(this.gemmScratch);
    return true;
  }

  /** Run on `n` threads (1: stop the workers). Called by setThreads() in threads.ts. */
  setThreadCount(n: number): Promise<void> {
    const workers = Math.max(0, Math.floor(n) - 1);
    if (this.pool && this.poolWorkers === workers) return this.poolReady;
    this.pool?.stop();
    this.pool = null;
    this.poolWorkers = 0;
    const host = threadsHost();
    if (workers === 0 || !host || !this.ensureShared()) return (this.poolReady = Promise.resolve());
    const scratchBytes = this.k.gemm_scratch_bytes();
    while (this.workerGemmScratch.length < workers) {
      this.workerGemmScratch.push((this.alloc(Math.ceil(scratchBytes / 4)) as WasmBuffer).ptr);
      this.workerCol.push(null);
    }
    // The control block is never freed: a worker that is slow to start may still touch it.
    const ctrl = (this.alloc(Math.ceil(ThreadPool.ctrlBytes(workers) / 4)) as WasmBuffer).ptr;
    this.pool = new ThreadPool(
      host, this.memoryObject, this.module(true)!, ctrl,
      this.workerGemmScratch.slice(0, workers), KERNEL_INDEX,
    );
    this.poolWorkers = workers;
    return (this.poolReady = this.pool.ready());
  }
  private poolWorkers = 0;

  /**
   * How many parts to cut a kernel of `work` units into: 1 when small or single-threaded,
   * else PARTS_PER_THREAD per thread, so that a thread the OS holds back (other processes
   * on the cores) leaves its parts to the others (threads claim parts as they go).
   */
  private lanes(work: number, min: number, perThread = PARTS_PER_THREAD): number {
    return this.pool && work >= min ? Math.min(MAX_PARTS, (1 + this.pool.size) * perThread) : 1;
  }

  /** [start, end) blocks of [0, total): about `lanes` blocks, multiples of `align` but the last. */
  private static ranges(total: number, lanes: number, align: number): [number, number][] {
    if (lanes <= 1 || total <= align) return [[0, total]];
    const chunk = Math.ceil(Math.ceil(total / lanes) / align) * align;
    const out: [number, number][] = [];
    for (let s = 0; s < total; s += chunk) out.push([s, Math.min(total, s + chunk)]);
    return out;
  }

  /**
   * Run a kernel once per argument list, spread over the threads. With `colFloats`, argument
   * 3 is the running thread's own im2col scratch of that many floats.
   */
  private exec(kernel: ThreadedKernel, parts: number[][], colFloats = -1): void {
    const fn = this.k[kernel] as unknown as (...args: number[]) => void;
    if (parts.length === 1 || !this.pool) {
      if (colFloats >= 0) { const col = this.col(colFloats); for (const a of parts) a[3] = col; }
      for (const a of parts) fn(...a);
      return;
    }
    const cols = colFloats >= 0
      ? Array.from({ length: 1 + this.pool.size }, (_, t) => this.colFor(t, colFloats)) : [];
    this.pool.run(kernel, parts, (a) => fn(...a), colFloats >= 0 ? 3 : -1, cols);
    this.splitCalls++;
  }
  /** Kernel calls that were split across threads (for tests and diagnostics). */
  splitCalls = 0;

  /** An elementwise kernel over n elements, split into contiguous 16-element-aligned ranges. */
  private elementwise(kernel: ThreadedKernel, n: number, args: (s: number, len: number) => number[]): void {
    const parts = CpuBackend.ranges(n, this.lanes(n, MIN_ELEMENTS), 16).map(([s, e]) => args(s, e - s));
    this.exec(kernel, parts);
  }

  private f32(buf: DeviceBuffer): Float32Array {
    const b = buf as WasmBuffer;
    return new Float32Array(this.memoryObject.buffer, b.ptr, b.length);
  }

  private p(buf: DeviceBuffer | null): number {
    return buf === null ? 0 : (buf as WasmBuffer).ptr;
  }

  alloc(length: number): DeviceBuffer {
    const bytes = sizeClass(length * 4);
    const reusable = this.freeLists.get(bytes);
    let ptr = reusable?.pop();
    if (ptr === undefined) {
      // Grow first and move the top only once the memory is there: a failed request leaves
      // the allocator as it was, and the backend usable.
      const needed = this.top + bytes - this.memoryObject.buffer.byteLength;
      if (needed > 0) {
        try {
          this.memoryObject.grow(Math.ceil(needed / PAGE));
        } catch (cause) {
          throw new OutOfMemoryError(
            `cpu: out of memory: a tensor of ${length} floats (${bytes} bytes) does not fit in the WebAssembly heap ` +
              `(${this.bytesInUse} bytes in use by ${this.liveBuffers} live buffers, heap ${this.memoryObject.buffer.byteLength} bytes, ` +
              `at most 4 GiB): ${(cause as Error).message}; free tensors or use a smaller batch`,
          );
        }
      }
      ptr = this.top;
      this.top += bytes;
    }
    this.bytesInUse += bytes;
    this.liveBuffers++;
    if (this.bytesInUse > this.peakBytes) this.peakBytes = this.bytesInUse;
    return new WasmBuffer(ptr, length, bytes);
  }

  free(buf: DeviceBuffer): void {
    const b = buf as WasmBuffer;
    let list = this.freeLists.get(b.bytes);
    if (!list) this.freeLists.set(b.bytes, (list = []));
    list.push(b.ptr);
    this.bytesInUse -= b.bytes;
    this.liveBuffers--;
  }

  write(buf: DeviceBuffer, data: Float32Array | Int32Array): void {
    const b = buf as WasmBuffer;
    new Uint8Array(this.memoryObject.buffer, b.ptr, b.length * 4)
      .set(new Uint8Array(data.buffer, data.byteOffset, b.length * 4));
  }

  readSync(buf: DeviceBuffer): Float32Array {
    return this.f32(buf).slice();
  }

  read(buf: DeviceBuffer): Promise<Float32Array> {
    return Promise.resolve(this.readSync(buf));
  }

  memory(): MemoryInfo {
    return { bytesInUse: this.bytesInUse, peakBytes: this.peakBytes, buffers: this.liveBuffers };
  }

  resetPeak(): void {
    this.peakBytes = this.bytesInUse;
  }

  private col(floats: number): number {
    if (!this.colScratch || this.colScratch.length < floats) {
      if (this.colScratch) this.free(this.colScratch);
      this.colScratch = this.alloc(floats) as WasmBuffer;
    }
    return this.colScratch.ptr;
  }

  /** im2col scratch of thread `t` (0: this thread, t ≥ 1: worker t−1's own). */
  private colFor(t: number, floats: number): number {
    if (t === 0) return this.col(floats);
    const cur = this.workerCol[t - 1];
    if (cur && cur.length >= floats) return cur.ptr;
    if (cur) this.free(cur);
    const next = this.alloc(floats) as WasmBuffer;
    this.workerCol[t - 1] = next;
    return next.ptr;
  }

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
  randomUniform(y: DeviceBuffer, lo: number, hi: number, key: number, counter: number): void {
    this.k.random_uniform(this.p(y), y.length, lo, hi, key, counter);
  }
  randomNormal(y: DeviceBuffer, mean: number, std: number, key: number, counter: number): void {
    this.k.random_normal(this.p(y), y.length, mean, std, key, counter);
  }

  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: DeviceBuffer, B: DeviceBuffer, beta: number, C: DeviceBuffer,
  ): void {
    const lda = transA ? M : K;
    const ldb = transB ? K : N;
    const pA = this.p(A), pB = this.p(B), pC = this.p(C);
    const lanes = this.lanes(2 * M * N * K, MIN_FLOPS);
    // Each C element is the same k-ordered sum whichever block of rows or columns it is in.
    const parts = M >= N
      ? CpuBackend.ranges(M, lanes, 4).map(([m0, m1]) => [
        +transA, +transB, m1 - m0, N, K, alpha, pA + 4 * (transA ? m0 : m0 * lda), lda, pB, ldb, beta, pC + 4 * m0 * N, N,
      ])
      : CpuBackend.ranges(N, lanes, 8).map(([n0, n1]) => [
        +transA, +transB, M, n1 - n0, K, alpha, pA, lda, pB + 4 * (transB ? n0 * ldb : n0), ldb, beta, pC + 4 * n0, N,
      ]);
    this.exec("gemm", parts);
  }

  /** Col scratch floats of one conv kernel call over `images` images (the kernels' own rule). */
  private colFloats(kind: 0 | 1 | 2, g: ConvGeometry, images = g.N): number {
    const dims = geometryArgs(g);
    dims[0] = images;
    return this.k.conv_scratch_floats(kind, ...dims);
  }
  private convFlops(g: ConvGeometry): number {
    return 2 * g.N * g.O * (g.C / g.G) * g.KH * g.KW * g.OH * g.OW;
  }
  /** Forward-type conv kernels split by images: x-side and y-side tensors offset per image. */
  private convByImages(
    kernel: "conv2d_forward" | "conv2d_backward_input", src: number, srcImg: number, w: number,
    dst: number, dstImg: number, g: ConvGeometry,
  ): void {
    const dims = geometryArgs(g);
    const ranges = CpuBackend.ranges(g.N, this.lanes(this.convFlops(g), MIN_FLOPS), 1);
    const parts = ranges.map(([n0, n1]) => {
      const d = dims.slice();
      d[0] = n1 - n0;
      return [src + 4 * n0 * srcImg, w, dst + 4 * n0 * dstImg, 0, ...d];
    });
    const images = Math.max(...ranges.map(([n0, n1]) => n1 - n0));
    this.exec(kernel, parts, this.colFloats(kernel === "conv2d_forward" ? 0 : 1, g, images));
  }
  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void {
    this.convByImages("conv2d_forward", this.p(x), g.C * g.H * g.W, this.p(w), this.p(y), g.O * g.OH * g.OW, g);
  }
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void {
    this.convByImages("conv2d_backward_input", this.p(dy), g.O * g.OH * g.OW, this.p(w), this.p(dx), g.C * g.H * g.W, g);
  }
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void {
    // split by input channels: every thread sums its dw columns over the whole batch in order
    // Blocks of channels whose dw columns (channels·KH·KW) fill whole 8-column gemm strips
    // where the layer is wide enough: narrow or ragged blocks waste the micro-kernel's lanes.
    const pdy = this.p(dy), px = this.p(x), pdw = this.p(dw);
    const dims = geometryArgs(g);
    const khw = g.KH * g.KW;
    let align = 8 / gcd(khw, 8);
    if (g.C < 2 * align) align = 1;
    const parts = CpuBackend.ranges(g.C, this.lanes(this.convFlops(g), MIN_FLOPS), align)
      .map(([c0, c1]) => [pdy, px, pdw, 0, ...dims, c0, c1]);
    this.exec("conv2d_backward_weight", parts, this.colFloats(2, g));
  }

  /** Per-channel kernels split into channel blocks [c0, c1). */
  private byChannels(kernel: ThreadedKernel, N: number, C: number, HW: number, args: number[]): void {
    const parts = CpuBackend.ranges(C, this.lanes(N * C * HW, MIN_ELEMENTS), 1).map(([c0, c1]) => [...args, c0, c1]);
    this.exec(kernel, parts);
  }

  batchNormTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.trainForward(x, gamma, beta, null, false, y, saveMean, saveInvstd, runningMean, runningVar, N, C, HW, momentum, eps);
  }
  batchNormReluTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, residual: DeviceBuffer | null, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.trainForward(x, gamma, beta, residual, true, y, saveMean, saveInvstd, runningMean, runningVar, N, C, HW, momentum, eps);
  }
  /** Both training forwards are one kernel; the residual add and the ReLU are its epilogue. */
  private trainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, residual: DeviceBuffer | null, relu: boolean,
    y: DeviceBuffer, saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.byChannels("batchnorm_train_forward", N, C, HW, [
      this.p(x), this.p(gamma), this.p(beta), this.p(residual), this.p(y), this.p(saveMean), this.p(saveInvstd),
      this.p(runningMean), this.p(runningVar), N, C, HW, momentum, eps, runningMean ? 1 : 0, +relu,
    ]);
  }
  batchNormEvalForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer,
    runningMean: DeviceBuffer, runningVar: DeviceBuffer, y: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.byChannels("batchnorm_eval_forward", N, C, HW, [
      this.p(x), this.p(gamma), this.p(beta), this.p(runningMean), this.p(runningVar), this.p(y),
      N, C, HW, eps,
    ]);
  }
  batchNormBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number,
  ): void {
    this.batchNormReluBackward(dy, null, x, gamma, saveMean, saveInvstd, dx, dgamma, dbeta, null, N, C, HW);
  }
  /** y null: no ReLU to mask by (the plain batchNormBackward, the same kernel). */
  batchNormReluBackward(
    dy: DeviceBuffer, y: DeviceBuffer | null, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    dresidual: DeviceBuffer | null, N: number, C: number, HW: number,
  ): void {
    this.byChannels("batchnorm_backward", N, C, HW, [
      this.p(dy), this.p(y), this.p(x), this.p(gamma), this.p(saveMean), this.p(saveInvstd), this.p(dx),
      this.p(dgamma), this.p(dbeta), this.p(dresidual), N, C, HW,
    ]);
  }
  batchNormEvalBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, runningMean: DeviceBuffer,
    runningVar: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.byChannels("batchnorm_eval_backward", N, C, HW, [
      this.p(dy), this.p(x), this.p(gamma), this.p(runningMean), this.p(runningVar), this.p(dx),
      this.p(dgamma), this.p(dbeta), N, C, HW, eps,
    ]);
  }

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
  private outerSplit(dims: readonly number[]): { axis: number; inner: number; lanes: number } {
    const total = dims[0] * dims[1] * dims[2] * dims[3];
    let axis = 0;
    while (axis < 3 && dims[axis] === 1) axis++;
    let inner = 1;
    for (let i = axis + 1; i < 4; i++) inner *= dims[i];
    return { axis, inner, lanes: this.lanes(total, MIN_ELEMENTS) };
  }
  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const pa = this.p(a), pb = this.p(b), py = this.p(y);
    const { axis, inner, lanes } = this.outerSplit(bc.dims);
    const parts = CpuBackend.ranges(bc.dims[axis], lanes, axis === 3 ? 16 : 1).map(([s, e]) => {
      const dims = [...bc.dims];
      dims[axis] = e - s;
      return [
        BINARY_OPS[op], pa + 4 * s * bc.aStrides[axis], pb + 4 * s * bc.bStrides[axis], py + 4 * s * inner,
        ...dims, ...bc.aStrides, ...bc.bStrides,
      ];
    });
    this.exec("broadcast_binary", parts);
  }
  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    const px = this.p(x), py = this.p(y);
    const { axis, inner, lanes } = this.outerSplit(bc.dims);
    const ys = bc.aStrides[axis];
    // only over output elements: the split axis must be kept (not summed) in y
    const ok = ys !== 0 && y.length === bc.dims[axis] * ys;
    const parts = CpuBackend.ranges(bc.dims[axis], ok ? lanes : 1, axis === 3 ? 16 : 1).map(([s, e]) => {
      const dims = [...bc.dims];
      dims[axis] = e - s;
      return [px + 4 * s * inner, py + 4 * s * ys, (e - s) * ys, ...dims, ...bc.aStrides];
    });
    this.exec("reduce_broadcast", ok ? parts : [[px, py, y.length, ...broadcastArgs(bc, bc.aStrides)]]);
  }
  dropoutForward(
    x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, key: number, counter: number,
  ): void {
    this.k.dropout_forward(this.p(x), this.p(y), this.p(mask), y.length, p, key, counter);
  }

  /** Pooling kernels split by planes (n, c): each block is N = planes, C = 1 on offset pointers. */
  private byPlanes(g: PoolGeometry, args: (p0: number, planes: number) => number[], kernel: ThreadedKernel): void {
    const planes = g.N * g.C;
    const parts = CpuBackend.ranges(planes, this.lanes(planes * g.H * g.W, MIN_ELEMENTS), 1)
      .map(([p0, p1]) => args(p0, p1 - p0));
    this.exec(kernel, parts);
  }
  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void {
    const px = this.p(x), py = this.p(y), pa = this.p(argmax);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    const rest = poolArgs(g).slice(2);
    this.byPlanes(g, (p0, n) => [px + 4 * p0 * HW, py + 4 * p0 * OHW, pa + 4 * p0 * OHW, n, 1, ...rest], "maxpool_forward");
  }
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void {
    const pdy = this.p(dy), pa = this.p(argmax), pdx = this.p(dx);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    this.byPlanes(g, (p0, n) => [pdy + 4 * p0 * OHW, pa + 4 * p0 * OHW, pdx + 4 * p0 * HW, n, 1, g.H, g.W, g.OH, g.OW],
      "maxpool_backward");
  }
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    const px = this.p(x), py = this.p(y);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    const rest = poolArgs(g).slice(2);
    this.byPlanes(g, (p0, n) => [px + 4 * p0 * HW, py + 4 * p0 * OHW, n, 1, ...rest, +countIncludePad], "avgpool_forward");
  }
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    const pdy = this.p(dy), pdx = this.p(dx);
    const HW = g.H * g.W, OHW = g.OH * g.OW;
    const rest = poolArgs(g).slice(2);
    this.byPlanes(g, (p0, n) => [pdy + 4 * p0 * OHW, pdx + 4 * p0 * HW, n, 1, ...rest, +countIncludePad], "avgpool_backward");
  }

  softmaxCrossEntropy(
    logits: DeviceBuffer, labels: DeviceBuffer, losses: DeviceBuffer,
    N: number, C: number, smoothing: number,
  ): void {
    this.k.softmax_xent_forward(this.p(logits), this.p(labels), this.p(losses), N, C, smoothing);
  }
  softmaxCrossEntropyBackward(
    logits: DeviceBuffer, labels: DeviceBuffer, dlogits: DeviceBuffer,
    N: number, C: number, smoothing: number, alpha: number, scale: number,
  ): void {
    this.k.softmax_xent_backward(
      this.p(logits), this.p(labels), this.p(dlogits), N, C, smoothing, alpha, scale,
    );
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

/** The kernel builds a CpuBackend can run. */
interface KernelModules {
  plain: WebAssembly.Module;
  /** The shared-memory builds, compiled on first use (null: no threads here). */
  plainShared: () => WebAssembly.Module | null;
  /** The relaxed-SIMD build (null: not compiled yet, or this runtime lacks relaxed SIMD). */
  relaxed: () => WebAssembly.Module | null;
  relaxedShared: () => WebAssembly.Module | null;
}

/** Compile once per process; top-level await keeps `import` the only set-up a user needs. */
const plainModule = await WebAssembly.compile(base64ToBytes(kernelsWasmBase64.plain));

/** Compile `b64` synchronously on first call (null where it fails or shared memory is missing);
 * called only when threads are asked for, never on a browser's main thread, where synchronous
 * compilation of large modules is refused. */
function lazySharedModule(b64: string): () => WebAssembly.Module | null {
  let module: WebAssembly.Module | null | undefined;
  return () => {
    if (module === undefined) {
      module = null;
      if (typeof SharedArrayBuffer === "function") {
        try {
          module = new WebAssembly.Module(base64ToBytes(b64));
        } catch {
          module = null;
        }
      }
    }
    return module;
  };
}
const plainSharedModule = lazySharedModule(kernelsWasmBase64.plainShared);
const relaxedSharedModule = lazySharedModule(kernelsWasmBase64.relaxedShared);

/** The relaxed build, compiled (asynchronously) by the first setDeterministic(false). */
let relaxedModule: WebAssembly.Module | null = null;
let relaxedCompiled: Promise<WebAssembly.Module | null> | undefined;
function compileRelaxed(): Promise<WebAssembly.Module | null> {
  relaxedCompiled ??= (async () => {
    const bytes = base64ToBytes(kernelsWasmBase64.relaxed);
    return (relaxedModule = WebAssembly.validate(bytes) ? await WebAssembly.compile(bytes) : null);
  })();
  return relaxedCompiled;
}

const modules: KernelModules = {
  plain: plainModule, plainShared: plainSharedModule,
  relaxed: () => relaxedModule, relaxedShared: relaxedSharedModule,
};
const cpuBackends = new Set<WeakRef<CpuBackend>>();
let deterministic = true;

export function createCpuBackend(): CpuBackend {
  return new CpuBackend(modules, !deterministic);
}

/**
 * Deterministic kernels (true, the default): the plain SIMD128 build, the same bits on every
 * runtime, machine and thread count. false: the relaxed-SIMD build where this runtime supports
 * it (fused multiply-add: faster, and still the same bits for every thread count on one
 * machine). Applies to every CPU backend, now and later; returns whether the kernels in
 * effect are the deterministic ones (true where relaxed SIMD is unsupported).
 */
export async function setDeterministic(on: boolean): Promise<boolean> {
  const relaxed = on ? null : await compileRelaxed();
  deterministic = relaxed === null;
  for (const ref of cpuBackends) {
    const b = ref.deref();
    if (!b) cpuBackends.delete(ref);
    else await b.setRelaxedSimd(!deterministic);
  }
  return deterministic;
}

/** Are the CPU kernels the deterministic (plain SIMD128) build? */
export function isDeterministic(): boolean {
  return deterministic;
}
