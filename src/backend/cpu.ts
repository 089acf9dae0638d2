/**
 * The CPU backend: the AssemblyScript kernels (assembly/, compiled to build/kernels.wasm)
 * run on one WebAssembly.Memory, and this file is the allocator and the typed doorway to
 * them. The wasm bytes travel inside the module graph (build/kernels_wasm.ts, base64), so
 * loading needs no file system, fetch or permission: the same code runs in Deno, Node,
 * browsers and workers. Buffers are byte ranges of the linear memory handed out by a
 * size-class free list, so a training step that allocates the same shapes every time reuses
 * the same memory and never grows the heap after its first step.
 */
import type {
  Backend, BinaryOp, Broadcast4, ConvGeometry, DeviceBuffer, MemoryInfo, PoolGeometry, SgdOptions,
} from "./backend.ts";
import { kernelsWasmBase64 } from "../../build/kernels_wasm.ts";

/** The kernel exports, as compiled from assembly/index.ts. */
interface Kernels {
  gemm_scratch_bytes(): number;
  set_gemm_scratch(ptr: number): void;
  gemm(ta: number, tb: number, M: number, N: number, K: number, alpha: number, A: number, lda: number,
    B: number, ldb: number, beta: number, C: number, ldc: number): void;
  conv2d_forward(x: number, w: number, y: number, col: number, ...dims: number[]): void;
  conv2d_backward_input(dy: number, w: number, dx: number, col: number, ...dims: number[]): void;
  conv2d_backward_weight(dy: number, x: number, dw: number, col: number, ...dims: number[]): void;
  batchnorm_train_forward(x: number, g: number, b: number, y: number, m: number, is: number,
    rm: number, rv: number, N: number, C: number, HW: number, mom: number, eps: number, upd: number): void;
  batchnorm_eval_forward(x: number, g: number, b: number, rm: number, rv: number, y: number,
    N: number, C: number, HW: number, eps: number): void;
  batchnorm_backward(dy: number, x: number, g: number, m: number, is: number, dx: number, dg: number,
    db: number, N: number, C: number, HW: number): void;
  batchnorm_eval_backward(dy: number, x: number, g: number, rm: number, rv: number, dx: number,
    dg: number, db: number, N: number, C: number, HW: number, eps: number): void;
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

export class CpuBackend implements Backend {
  readonly name = "cpu";
  private readonly memoryObject: WebAssembly.Memory;
  private readonly k: Kernels;
  private top = HEAP_BASE;
  private readonly freeLists = new Map<number, number[]>();
  private bytesInUse = 0;
  private peakBytes = 0;
  private liveBuffers = 0;
  /** Grow-only im2col scratch, shared by every convolution (one runs at a time). */
  private colScratch: WasmBuffer | null = null;

  constructor(module: WebAssembly.Module) {
    this.memoryObject = new WebAssembly.Memory({ initial: 256, maximum: 65536 });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memoryObject } });
    this.k = instance.exports as unknown as Kernels;
    const scratch = this.alloc(Math.ceil(this.k.gemm_scratch_bytes() / 4)) as WasmBuffer;
    this.k.set_gemm_scratch(scratch.ptr);
    this.resetPeak();
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
      ptr = this.top;
      this.top += bytes;
      const needed = this.top - this.memoryObject.buffer.byteLength;
      if (needed > 0) this.memoryObject.grow(Math.ceil(needed / PAGE));
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

  fill(y: DeviceBuffer, value: number): void {
    this.k.fill(this.p(y), y.length, value);
  }
  copy(x: DeviceBuffer, y: DeviceBuffer): void {
    this.k.copy(this.p(x), this.p(y), y.length);
  }
  axpy(alpha: number, x: DeviceBuffer, y: DeviceBuffer): void {
    this.k.axpy(y.length, alpha, this.p(x), this.p(y));
  }
  scale(x: DeviceBuffer, y: DeviceBuffer, alpha: number): void {
    this.k.scale(this.p(x), this.p(y), y.length, alpha);
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
    this.k.gemm(+transA, +transB, M, N, K, alpha, this.p(A), lda, this.p(B), ldb, beta, this.p(C), N);
  }

  private colFloats(g: ConvGeometry): number {
    return (g.C / g.G) * g.KH * g.KW * g.OH * g.OW;
  }
  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void {
    const col = this.col(this.colFloats(g));
    this.k.conv2d_forward(this.p(x), this.p(w), this.p(y), col, ...geometryArgs(g));
  }
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void {
    const col = this.col(this.colFloats(g));
    this.k.conv2d_backward_input(this.p(dy), this.p(w), this.p(dx), col, ...geometryArgs(g));
  }
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void {
    const col = this.col(this.colFloats(g));
    this.k.conv2d_backward_weight(this.p(dy), this.p(x), this.p(dw), col, ...geometryArgs(g));
  }

  batchNormTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void {
    this.k.batchnorm_train_forward(
      this.p(x), this.p(gamma), this.p(beta), this.p(y), this.p(saveMean), this.p(saveInvstd),
      this.p(runningMean), this.p(runningVar), N, C, HW, momentum, eps, runningMean ? 1 : 0,
    );
  }
  batchNormEvalForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer,
    runningMean: DeviceBuffer, runningVar: DeviceBuffer, y: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.k.batchnorm_eval_forward(
      this.p(x), this.p(gamma), this.p(beta), this.p(runningMean), this.p(runningVar), this.p(y),
      N, C, HW, eps,
    );
  }
  batchNormBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number,
  ): void {
    this.k.batchnorm_backward(
      this.p(dy), this.p(x), this.p(gamma), this.p(saveMean), this.p(saveInvstd), this.p(dx),
      this.p(dgamma), this.p(dbeta), N, C, HW,
    );
  }
  batchNormEvalBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, runningMean: DeviceBuffer,
    runningVar: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void {
    this.k.batchnorm_eval_backward(
      this.p(dy), this.p(x), this.p(gamma), this.p(runningMean), this.p(runningVar), this.p(dx),
      this.p(dgamma), this.p(dbeta), N, C, HW, eps,
    );
  }

  reluForward(x: DeviceBuffer, y: DeviceBuffer): void {
    this.k.relu_forward(this.p(x), this.p(y), y.length);
  }
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    this.k.relu_backward(this.p(y), this.p(dy), this.p(dx), dx.length);
  }
  sigmoidForward(x: DeviceBuffer, y: DeviceBuffer): void {
    this.k.sigmoid_forward(this.p(x), this.p(y), y.length);
  }
  sigmoidBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void {
    this.k.sigmoid_backward(this.p(y), this.p(dy), this.p(dx), dx.length);
  }
  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    this.k.broadcast_binary(
      BINARY_OPS[op], this.p(a), this.p(b), this.p(y), ...bc.dims, ...bc.aStrides, ...bc.bStrides,
    );
  }
  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void {
    this.k.reduce_broadcast(this.p(x), this.p(y), y.length, ...broadcastArgs(bc, bc.aStrides));
  }
  dropoutForward(
    x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, key: number, counter: number,
  ): void {
    this.k.dropout_forward(this.p(x), this.p(y), this.p(mask), y.length, p, key, counter);
  }

  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void {
    this.k.maxpool_forward(this.p(x), this.p(y), this.p(argmax), ...poolArgs(g));
  }
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void {
    this.k.maxpool_backward(this.p(dy), this.p(argmax), this.p(dx), g.N, g.C, g.H, g.W, g.OH, g.OW);
  }
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    this.k.avgpool_forward(this.p(x), this.p(y), ...poolArgs(g), +countIncludePad);
  }
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void {
    this.k.avgpool_backward(this.p(dy), this.p(dx), ...poolArgs(g), +countIncludePad);
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

  sgdUpdate(
    param: DeviceBuffer, grad: DeviceBuffer, momentumBuffer: DeviceBuffer | null,
    o: SgdOptions, firstStep: boolean,
  ): void {
    this.k.sgd_update(
      this.p(param), this.p(grad), this.p(momentumBuffer), param.length, o.lr, o.momentum,
      o.dampening, o.weightDecay, +o.nesterov, +firstStep,
    );
  }
}

/** Compile once per process; top-level await keeps `import` the only set-up a user needs. */
const kernelModule = await WebAssembly.compile(base64ToBytes(kernelsWasmBase64));

export function createCpuBackend(): CpuBackend {
  return new CpuBackend(kernelModule);
}
