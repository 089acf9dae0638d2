/**
 * The body of a CPU-backend worker thread. It is shipped to the worker as source text
 * (`cpuWorkerSource`), not as a module URL, so it loads the same way under Deno, Node
 * (worker_threads, `eval: true`, see cli/node_threads.ts) and browsers (a Blob URL), from
 * the .ts sources and from any bundle, wherever the files lie. That is why `cpuWorkerMain`
 * must stay self-contained: it may use no import and no module-level name.
 *
 * Protocol (all in the shared WebAssembly.Memory, laid out by threads.ts):
 *   init message: { memory, module, ctrl, slot, scratch, shuffledLoads, names } — the shared
 *     Memory, the compiled kernels (shared-memory build), the byte offsets of the control
 *     block and of this worker's slot, its own gemm packing scratch, the register tile's
 *     A-load shape (set_tile_loads), and the kernel export names.
 *   control block (Int32 words): [0] SEQ (job number, 20 bits), [1] DONE (parts finished),
 *     [2] STOP, [3] ERRORS, [4] NEXT ((SEQ << 12) | next unclaimed part), [5] PARTS,
 *     [6] kernel index, [7] argument count, [8] index of the argument that is replaced by
 *     the running thread's own im2col scratch (−1: none); Float64 arguments of part i at
 *     byte ARGS + i·MAX_ARGS·8.
 *   slot (Int32): [0] READY, [1] this worker's im2col scratch pointer, [2] the tile-load
 *     shape its instance took (read back from it, for tests).
 *   The worker polls SEQ for a quarter of a millisecond, then sleeps on it; when it moves, it
 *   claims parts with compare-and-swap on NEXT (the SEQ tag makes a stale claim fail), runs
 *   names[kernel](...args) on its own instance, adds 1 to DONE, and notifies DONE after the
 *   last part. Which thread runs which part does not change any result: each part writes its
 *   own outputs.
 */

export type WorkerListen = (onInit: (init: unknown) => void) => void;

/** Runs inside the worker; `listen` delivers the init message. Self-contained on purpose. */
export function cpuWorkerMain(listen: WorkerListen): void {
  listen((data: unknown) => {
    const init = data as {
      memory: WebAssembly.Memory; module: WebAssembly.Module; ctrl: number; slot: number;
      scratch: number; shuffledLoads: number; names: string[]; args: number; maxArgs: number; maxParts: number;
    };
    const ctl = new Int32Array(init.memory.buffer, init.ctrl, 16);
    const s32 = new Int32Array(init.memory.buffer, init.slot, 3);
    const f64 = new Float64Array(init.memory.buffer, init.args, init.maxArgs * init.maxParts);
    let seen = Atomics.load(ctl, 0);
    // deno-lint-ignore no-explicit-any
    let fns: any[];
    try {
      const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
      // deno-lint-ignore no-explicit-any
      const ex = instance.exports as any;
      ex.set_gemm_scratch(init.scratch);
      ex.set_tile_loads(init.shuffledLoads);
      s32[2] = ex.tile_loads();
      fns = init.names.map((n) => ex[n]);
    } catch {
      return; // never marks itself ready, so the main thread never counts on it
    }
    Atomics.store(s32, 0, 1); // READY
    // Poll for the next job before sleeping: a training step calls split kernels every few
    // tens of microseconds, and waking from Atomics.wait cost 10–25 µs a time on the machines
    // measured (bench/thread_wake.ts), as much as a worker's share of a small kernel. The
    // price: while it polls, the worker holds its core, which another process (or, on a
    // shared SMT core, the main thread) could have used; 0.25 ms is about ten wake-ups. The
    // iteration cap bounds the poll where the clock is coarse (timers rounded to milliseconds
    // for privacy), at roughly the same length.
    const spinMs = 0.25;
    const spinChecks = 1 << 17;
    for (;;) {
      const idleSince = performance.now();
      for (let i = 1; i < spinChecks && Atomics.load(ctl, 0) === seen; i++) {
        if ((i & 63) === 0 && performance.now() - idleSince > spinMs) break;
      }
      Atomics.wait(ctl, 0, seen); // returns at once if SEQ has moved meanwhile
      seen = Atomics.load(ctl, 0);
      if (Atomics.load(ctl, 2) !== 0) return; // STOP
      for (;;) {
        const v = Atomics.load(ctl, 4);
        if (v >>> 12 !== seen) break; // another job by now
        const part = v & 0xfff;
        const parts = Atomics.load(ctl, 5);
        if (part >= parts) break;
        if (Atomics.compareExchange(ctl, 4, v, v + 1) !== v) continue;
        try {
          const base = part * init.maxArgs;
          const args: number[] = Array.from(f64.subarray(base, base + ctl[7]));
          if (ctl[8] >= 0) args[ctl[8]] = s32[1];
          fns[ctl[6]](...args);
        } catch {
          Atomics.add(ctl, 3, 1);
        }
        if (Atomics.add(ctl, 1, 1) + 1 === parts) Atomics.notify(ctl, 1);
      }
    }
  });
}

/** The worker's source text: an expression calling cpuWorkerMain with `listenExpr`. */
export function cpuWorkerSource(listenExpr: string): string {
  return `(${cpuWorkerMain.toString()})(${listenExpr});\n`;
}
