/**
 * How the CPU backend runs kernels: one wasm instance per thread on one memory, and the split
 * of a kernel call into parts. A call is cut into blocks of its output (rows or columns of a
 * gemm, images, channels, planes, contiguous ranges), so each output element is computed by
 * one thread in the 1-thread summation order: results are bitwise the same for every thread
 * count. Parts are claimed dynamically by the threads (threads.ts), so a thread the OS holds
 * back leaves its parts to the others.
 *
 * On the first request for more than one thread the memory moves onto a shared
 * WebAssembly.Memory (copied byte for byte, so every buffer keeps its offset) and the kernels
 * are re-instantiated from the shared-memory build. Switching builds (deterministic or not)
 * re-instantiates over the same memory, so buffers survive it.
 */
import { checkKernelExports, type KernelArgs, type KernelName, type Kernels } from "./abi.ts";
import type { KernelModules } from "./builds.ts";
import { Heap, PAGE } from "./heap.ts";
import { Scratch } from "./scratch.ts";
import { MAX_PARTS, ThreadPool, threadsHost } from "./threads.ts";
import { tileLoadsFor } from "./tile_loads.ts";

/**
 * Smallest work worth waking the workers for (measured on 2 cores: a wake-up and join costs
 * tens of microseconds): floating-point operations for gemm / convolution, elements touched
 * for everything else.
 */
export const MIN_FLOPS = 2 ** 21;
export const MIN_ELEMENTS = 2 ** 16;
/** Parts per thread of a split kernel (threads claim parts dynamically). */
export const PARTS_PER_THREAD = 4;

/** [start, end) blocks of [0, total): about `parts` blocks, multiples of `align` but the last. */
export function ranges(total: number, parts: number, align: number): [number, number][] {
  if (parts <= 1 || total <= align) return [[0, total]];
  const chunk = Math.ceil(Math.ceil(total / parts) / align) * align;
  const out: [number, number][] = [];
  for (let s = 0; s < total; s += chunk) out.push([s, Math.min(total, s + chunk)]);
  return out;
}

export class Runner {
  private memoryObject: WebAssembly.Memory;
  private instance: Kernels;
  readonly heap: Heap;
  private readonly scratch: Scratch;
  private pool: ThreadPool | null = null;
  private poolReady: Promise<void> = Promise.resolve();
  private poolWorkers = 0;
  /** Kernel calls that were split across threads (for tests and diagnostics). */
  splitCalls = 0;

  constructor(private readonly modules: KernelModules, private relaxed: boolean) {
    this.memoryObject = new WebAssembly.Memory({ initial: 256, maximum: 65536 });
    this.heap = new Heap(() => this.memoryObject);
    this.instance = this.instantiate(this.module(false)!);
    this.scratch = new Scratch(this.heap, this.instance.gemm_scratch_bytes());
    this.instance.set_gemm_scratch(this.scratch.gemmFor(0));
  }

  /** The kernels of this (the main) thread. */
  get k(): Kernels {
    return this.instance;
  }

  get memory(): WebAssembly.Memory {
    return this.memoryObject;
  }

  /** Threads that run split kernels (this one and the workers). */
  get threads(): number {
    return 1 + (this.pool?.size ?? 0);
  }

  /** Workers started (0: one thread). */
  get workers(): number {
    return this.poolWorkers;
  }

  /** Parts the calling thread ran in the last split call (diagnostics). */
  get lastMine(): number {
    return this.pool?.lastMine ?? 0;
  }

  private instantiate(module: WebAssembly.Module): Kernels {
    const k = checkKernelExports(new WebAssembly.Instance(module, { env: { memory: this.memoryObject } }).exports);
    k.set_tile_loads(this.shuffledLoads());
    return k;
  }

  /** The A-load shape of the register tile, as set_tile_loads takes it (only the plain build reads it). */
  private shuffledLoads(): number {
    return !this.relaxed && tileLoadsFor(this.modules.plain) === "shuffle" ? 1 : 0;
  }

  /** Take up a new tile-loads choice (tile_loads.ts); the workers are restarted on it if it changed. */
  async refreshTileLoads(): Promise<void> {
    const shuffled = this.shuffledLoads();
    if (shuffled === this.instance.tile_loads()) return;
    this.instance.set_tile_loads(shuffled);
    await this.restartWorkers();
  }

  /** The tile-load shape of this thread's instance and of each ready worker's (diagnostics). */
  tileLoadsByThread(): number[] {
    return [this.instance.tile_loads(), ...(this.pool?.workerTileLoads() ?? [])];
  }

  private async restartWorkers(): Promise<void> {
    const workers = this.poolWorkers;
    if (workers === 0) return;
    this.pool!.stop();
    this.pool = null;
    this.poolWorkers = 0;
    await this.setThreadCount(workers + 1);
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

  /**
   * Run the relaxed-SIMD build (true) or the plain one (false); returns the setting in effect
   * (false where the runtime lacks relaxed SIMD). The workers are restarted on the new build.
   */
  async setRelaxedSimd(on: boolean): Promise<boolean> {
    if (on === this.relaxed) return on;
    this.relaxed = on;
    const module = this.module(this.isShared());
    if (!module) return (this.relaxed = !on);
    this.instance = this.instantiate(module);
    this.instance.set_gemm_scratch(this.scratch.gemmFor(0));
    await this.restartWorkers();
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
    this.memoryObject = memory;
    this.instance = this.instantiate(module);
    this.instance.set_gemm_scratch(this.scratch.gemmFor(0));
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
    const gemmScratch = Array.from({ length: workers }, (_, i) => this.scratch.gemmFor(i + 1));
    // The control block is never freed: a worker that is slow to start may still touch it.
    const ctrl = this.heap.alloc(Math.ceil(ThreadPool.ctrlBytes(workers) / 4)).ptr;
    this.pool = new ThreadPool(host, this.memoryObject, this.module(true)!, ctrl, gemmScratch, this.shuffledLoads());
    this.poolWorkers = workers;
    return (this.poolReady = this.pool.ready());
  }

  /**
   * How many parts to cut a kernel of `work` units into: 1 when small or single-threaded,
   * else PARTS_PER_THREAD per thread, so that a thread the OS holds back (other processes
   * on the cores) leaves its parts to the others.
   */
  parts(work: number, min: number): number {
    return this.pool && work >= min ? Math.min(MAX_PARTS, this.threads * PARTS_PER_THREAD) : 1;
  }

  /** A buffer of at least `floats` floats that every thread of the next calls may read (see Scratch.sharedFor). */
  shared(floats: number): number {
    return this.scratch.sharedFor(floats);
  }

  /**
   * Run a kernel once per argument list, spread over the threads. With `colFloats` ≥ 0,
   * argument 3 is replaced by the running thread's own convolution scratch of that many floats.
   */
  exec<K extends KernelName>(kernel: K, parts: KernelArgs<K>[], colFloats = -1): void {
    const fn = this.instance[kernel] as (...args: number[]) => number;
    const calls = parts as unknown as number[][];
    if (calls.length === 1 || !this.pool) {
      if (colFloats >= 0) { const col = this.scratch.colFor(0, colFloats); for (const a of calls) a[3] = col; }
      for (const a of calls) fn(...a);
      return;
    }
    const cols = colFloats >= 0
      ? Array.from({ length: 1 + this.pool.size }, (_, t) => this.scratch.colFor(t, colFloats)) : [];
    this.pool.run(kernel, calls, (a) => fn(...a), colFloats >= 0 ? 3 : -1, cols);
    this.splitCalls++;
  }
}
