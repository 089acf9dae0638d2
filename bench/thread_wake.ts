/**
 * What one split kernel call costs beyond its arithmetic: hand-off to the worker threads and
 * waiting for them. A training step makes about 130 split calls (ResNet-20), many of them
 * small (BatchNorm, ReLU, axpy on a few hundred kilobytes), with host work between them;
 * if a worker has gone to sleep in Atomics.wait, waking it costs tens of microseconds, which
 * on a small call is more than the half of the work it takes over. This times a ReLU forward
 * on `--floats` floats (default 2^17, 512 KiB, above the split threshold) called over and
 * over with `gap` microseconds of busy host work between calls, at 1 thread and at
 * `--threads` threads (alternating in rounds), and prints the median microseconds per call.
 * Node; JSON on stdout, a table on stderr:
 *
 *   node esbuild.config.mjs && node build/thread_wake.mjs [--threads 2] [--gaps 0,20,50,100,200,400,800]
 *     [--calls 2000] [--rounds 3] [--floats 131072] > wake.json
 */
import * as rg from "../src/mod.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import type { Backend } from "../src/backend/backend.ts";
import { log, median, option } from "./bench_args.ts";

/** Median microseconds per reluForward call with `gapUs` of busy host work after each. */
function timeCalls(backend: Backend, floats: number, calls: number, gapUs: number): number {
  const x = backend.alloc(floats), y = backend.alloc(floats);
  const us: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    backend.reluForward(x, y);
    us.push((performance.now() - t0) * 1000);
    const until = performance.now() + gapUs / 1000;
    while (performance.now() < until); // the host's work between two kernel calls
  }
  backend.free(x);
  backend.free(y);
  return median(us);
}

async function main(): Promise<void> {
  installNodeThreads();
  const threads = Number(option("threads", "2"));
  const gaps = option("gaps", "0,20,50,100,200,400,800").split(",").map(Number);
  const calls = Number(option("calls", "2000"));
  const rounds = Number(option("rounds", "3"));
  const floats = Number(option("floats", String(2 ** 17)));
  const backend = rg.getBackend("cpu");
  const perCall: Record<string, Record<string, number[]>> = { 1: {}, [threads]: {} };
  for (let r = 0; r < rounds; r++) {
    for (const t of r % 2 === 0 ? [1, threads] : [threads, 1]) {
      await rg.setThreads(t);
      timeCalls(backend, floats, 200, 0); // warm-up
      for (const gap of gaps) (perCall[t][gap] ??= []).push(timeCalls(backend, floats, calls, gap));
    }
  }
  await rg.setThreads(1);
  const medians = Object.fromEntries(Object.entries(perCall).map(([t, byGap]) =>
    [t, Object.fromEntries(Object.entries(byGap).map(([g, xs]) => [g, median(xs)]))]));
  log(`reluForward on ${floats} floats, median µs per call (median of ${rounds} rounds of ${calls} calls)`);
  log(`gap µs   ${gaps.map((g) => String(g).padStart(7)).join(" ")}`);
  for (const t of [1, threads]) log(`${t} thr    ${gaps.map((g) => medians[t][g].toFixed(1).padStart(7)).join(" ")}`);
  console.log(JSON.stringify({ bench: "thread-wake", floats, calls, rounds, threads, perCallUs: perCall, medianUs: medians }, null, 1));
  process.exit(0);
}

await main();
