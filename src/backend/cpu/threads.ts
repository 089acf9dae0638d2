/**
 * Threads for the CPU backend: one shared WebAssembly.Memory, N−1 workers that each run
 * their own instance of the (shared-memory) kernels on it, and the main thread, which
 * takes one share of every split kernel itself and then waits (Atomics.wait) for the rest.
 * runner.ts decides how a kernel is split (by output blocks, so each output element is
 * computed by one thread in the 1-thread summation order: results are bitwise identical
 * for every thread count); this file owns the workers and the hand-off.
 *
 * Where threads are available:
 * - Deno: web Workers, built in. Deno keeps a process alive while workers exist, so call
 *   `setThreads(1)` when done.
 * - Node 20: has no global Worker; `installNodeThreads()` from cli/node_threads.ts registers
 *   a node:worker_threads host (workers are unref'd, so they never keep a process alive).
 * - Browsers: only where `Atomics.wait` may block (inside a Worker, not the page's main
 *   thread) and the page is cross-origin isolated (SharedArrayBuffer); run training in a
 *   worker to get threads. Anywhere else the backend runs on 1 thread.
 */
import { KERNEL_NAMES } from "./abi.ts";
import { cpuWorkerSource, type WorkerListen } from "./worker.ts";
import { ValueError } from "../../errors.ts";

/** The part of a Worker the pool uses. */
export interface WorkerLike {
  postMessage(message: unknown): void;
  terminate(): void;
}

/** How a runtime starts a worker from source text (see worker.ts). */
export interface ThreadsHost {
  /** Start a worker running `source`; `source` expects the listen function `listenExpr`. */
  spawn(workerSource: (listenExpr: string) => string): WorkerLike;
  /** Logical cores (the default thread count of `setThreads()`). */
  concurrency?: number;
}

/** Can this thread block in Atomics.wait (Node, Deno, workers; not a browser's main thread)? */
function canBlock(): boolean {
  if (typeof SharedArrayBuffer !== "function" || typeof Atomics === "undefined") return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

function webHost(): ThreadsHost | null {
  const g = globalThis as { Worker?: unknown; crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  if (typeof g.Worker !== "function" || g.crossOriginIsolated === false) return null;
  if (typeof Blob !== "function" || typeof URL.createObjectURL !== "function") return null;
  return {
    spawn(workerSource) {
      const code = workerSource("(cb) => { self.onmessage = (e) => cb(e.data); }");
      const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      const W = g.Worker as new (url: string, opts: { type: "module" }) => WorkerLike;
      return new W(url, { type: "module" });
    },
    concurrency: g.navigator?.hardwareConcurrency,
  };
}

let host: ThreadsHost | null | undefined;
let threads = 1;

/** The host that starts workers here (null: one thread only). */
export function threadsHost(): ThreadsHost | null {
  return currentHost();
}

function currentHost(): ThreadsHost | null {
  if (host === undefined) host = canBlock() ? webHost() : null;
  return host;
}

/** Let a runtime adapter supply workers (cli/node_threads.ts does, for Node). */
export function registerThreadsHost(h: ThreadsHost | null): void {
  host = h && canBlock() ? h : null;
}

/** Cores the host reports (1 when unknown or when threads are unavailable here). */
export function availableThreads(): number {
  const h = currentHost();
  if (!h) return 1;
  return Math.max(1, Math.floor(h.concurrency ?? 1));
}

/** Backends that follow setThreads (weakly held; each CpuBackend registers itself). */
export interface Threaded {
  setThreadCount(n: number): Promise<void>;
}
const followers = new Set<WeakRef<Threaded>>();

export function followThreads(b: Threaded): void {
  followers.add(new WeakRef(b));
  if (threads > 1) void b.setThreadCount(threads);
}

/**
 * Use `n` threads for the CPU backend (default: the cores the runtime reports). Returns
 * the count in effect — 1 where workers or shared memory are unavailable — once the
 * workers are up. Results are the same for every count. `setThreads(1)` stops the workers.
 */
export async function setThreads(n?: number): Promise<number> {
  if (n !== undefined && !(Number.isInteger(n) && n >= 1)) {
    throw new ValueError(`setThreads: the thread count must be an integer ≥ 1, got ${n}`);
  }
  const want = Math.max(1, Math.min(64, Math.floor(n ?? availableThreads())));
  threads = currentHost() ? want : 1;
  const waits: Promise<void>[] = [];
  for (const ref of followers) {
    const b = ref.deref();
    if (!b) followers.delete(ref);
    else waits.push(b.setThreadCount(threads));
  }
  await Promise.all(waits);
  return threads;
}

/** The thread count in effect for the CPU backend. */
export function getThreads(): number {
  return threads;
}

/** The worker protocol names a kernel by its index in the ABI list. */
const KERNEL_INDEX = new Map<string, number>(KERNEL_NAMES.map((name, i) => [name, i]));

const CTRL_BYTES = 64;
const SLOT_BYTES = 16;
const MAX_ARGS = 24;
/** Most parts one kernel call may be cut into. */
export const MAX_PARTS = 64;
const SEQ = 0, DONE = 1, STOP = 2, ERRORS = 3, NEXT = 4, PARTS = 5, KERNEL = 6, NARGS = 7, COL_ARG = 8;
const READY = 0, COL = 1, TILE_LOADS = 2;
const SEQ_MASK = 0xfffff;
/** Low 12 bits of NEXT: the next unclaimed part (MAX_PARTS < PART_MASK, so PART_MASK means "none free"). */
const PART_MASK = 0xfff;

/**
 * N−1 workers on one shared memory. `ctrl` is ctrlBytes(N−1) bytes of that memory (8-byte
 * aligned); `scratch[i]` is worker i's gemm packing scratch; `shuffledLoads` the A-load shape
 * of the register tile (set_tile_loads) that every worker's instance takes.
 */
export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly slots: Int32Array[] = [];
  private readonly args: Float64Array;
  private readonly workers: WorkerLike[] = [];
  private stopped = false;

  constructor(
    h: ThreadsHost, memory: WebAssembly.Memory, module: WebAssembly.Module, ctrl: number, scratch: number[],
    shuffledLoads: number,
  ) {
    const buf = memory.buffer;
    new Uint8Array(buf, ctrl, ThreadPool.ctrlBytes(scratch.length)).fill(0);
    this.ctl = new Int32Array(buf, ctrl, CTRL_BYTES / 4);
    const argsAt = ctrl + CTRL_BYTES + 8 * Math.ceil((scratch.length * SLOT_BYTES) / 8);
    this.args = new Float64Array(buf, argsAt, MAX_ARGS * MAX_PARTS);
    for (let i = 0; i < scratch.length; i++) {
      const slot = ctrl + CTRL_BYTES + i * SLOT_BYTES;
      this.slots.push(new Int32Array(buf, slot, 3));
      try {
        const w = h.spawn(cpuWorkerSource);
        w.postMessage({
          memory, module, ctrl, slot, scratch: scratch[i], shuffledLoads, names: KERNEL_NAMES, args: argsAt, maxArgs: MAX_ARGS,
          maxParts: MAX_PARTS,
        });
        this.workers.push(w);
      } catch {
        // a worker that cannot start never becomes ready; the others share its work
      }
    }
  }

  static ctrlBytes(workers: number): number {
    return CTRL_BYTES + 8 * Math.ceil((workers * SLOT_BYTES) / 8) + 8 * MAX_ARGS * MAX_PARTS;
  }

  /** Workers in the pool (started or not). */
  get size(): number {
    return this.slots.length;
  }

  /** Workers that have started. */
  readyCount(): number {
    let n = 0;
    for (const s of this.slots) if (Atomics.load(s, READY) === 1) n++;
    return n;
  }

  /** The tile-load shape (set_tile_loads) each ready worker's instance reports. */
  workerTileLoads(): number[] {
    return this.slots.filter((s) => Atomics.load(s, READY) === 1).map((s) => s[TILE_LOADS]);
  }

  /** Resolves when every worker is ready, or after `timeoutMs` with those that are. */
  async ready(timeoutMs = 20000): Promise<void> {
    const t0 = Date.now();
    while (this.readyCount() < this.slots.length && Date.now() - t0 < timeoutMs) {
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /**
   * Run `kernel` once per argument list in `parts` (at most MAX_PARTS), on this thread and
   * on every worker that is awake, each claiming the next unclaimed part; returns when all
   * are done. Argument `colArg` (if ≥ 0) is replaced by the running thread's own scratch:
   * cols[0] here, cols[i + 1] on worker i.
   */
  run(kernel: string, parts: number[][], call: (args: number[]) => void, colArg = -1, cols: number[] = []): void {
    const n = parts.length;
    const ctl = this.ctl;
    const seq = (Atomics.load(ctl, SEQ) + 1) & SEQ_MASK;
    // Close the previous job before touching any job data: a worker preempted between reading
    // NEXT and its compare-and-swap must not claim a part of this job while its kernel and
    // arguments are still being written. The new tag with no free part makes that CAS fail.
    Atomics.store(ctl, NEXT, (seq << 12) | PART_MASK);
    Atomics.store(ctl, DONE, 0);
    ctl[PARTS] = n;
    ctl[KERNEL] = KERNEL_INDEX.get(kernel)!;
    ctl[NARGS] = parts[0].length;
    ctl[COL_ARG] = colArg;
    for (let i = 0; i < this.slots.length; i++) this.slots[i][COL] = colArg >= 0 ? cols[i + 1] : 0;
    for (let i = 0; i < n; i++) this.args.set(parts[i], i * MAX_ARGS);
    Atomics.store(ctl, NEXT, seq << 12);
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    // claim parts here too
    let mine = 0;
    let failure: unknown = null;
    for (;;) {
      const v = Atomics.load(ctl, NEXT);
      const part = v & PART_MASK;
      if (part >= n) break;
      if (Atomics.compareExchange(ctl, NEXT, v, v + 1) !== v) continue;
      const a = parts[part];
      if (colArg >= 0) a[colArg] = cols[0];
      // A part that throws still counts as done, so this job ends before the next begins
      // (a late DONE from it would otherwise be counted for the next job).
      try {
        call(a);
      } catch (error) {
        failure ??= error;
      }
      mine++;
      if (Atomics.add(ctl, DONE, 1) + 1 === n) break;
    }
    let done: number;
    for (let spin = 0; (done = Atomics.load(ctl, DONE)) < n; spin++) {
      if (spin > 2000) Atomics.wait(ctl, DONE, done);
    }
    this.lastMine = mine;
    if (failure !== null) throw failure;
    if (Atomics.load(ctl, ERRORS) !== 0) {
      Atomics.store(ctl, ERRORS, 0);
      throw new Error(`CPU worker failed running kernel ${kernel}`);
    }
  }
  /** Parts the calling thread ran in the last run() (diagnostics). */
  lastMine = 0;

  /** Stop and terminate the workers (their memory regions stay reserved). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.store(this.ctl, SEQ, (Atomics.load(this.ctl, SEQ) + 1) & SEQ_MASK);
    Atomics.notify(this.ctl, SEQ);
    for (const w of this.workers) {
      try { w.terminate(); } catch { /* already gone */ }
    }
  }
}

export type { WorkerListen };
