/**
 * Where a CPU training step's time goes, per backend call, at several thread counts inside one
 * process: what keeps the 2-thread step from taking half the 1-thread one. Every public method
 * of the CPU backend is wrapped with a timer (outermost calls only); the step time not spent
 * in any backend call is "host" (the autograd tape, allocation, JavaScript between kernels).
 * The thread counts alternate round by round (which goes first alternates too), each round a
 * warm-up step and then `--steps` timed ones, so every count sees the same load of a shared
 * machine. The model and step are bench/throughput.ts's (ResNet-20 at batch 64, ResNet-18 with
 * the CIFAR stem at batch 32, 3×32×32, SGD with momentum and weight decay).
 *
 * A count written "1x2" is one thread running the kernels cut into the parts of 2 threads, one
 * after the other: what the split itself costs (repacking, padding and edges per part),
 * apart from any synchronisation or contention.
 *
 * For each model, one line per operation (by method, or by method and layer shape with
 * `--by-shape`): calls per step and median milliseconds per step at each count, the speed-up,
 * and "lost": how many milliseconds the last count spends beyond a perfect split of the first
 * (t_last − t_first · first/last), sorted by it. JSON (every step's figures) on stdout, the
 * table on stderr:
 *
 *   node esbuild.config.mjs && nice -n -10 node build/step_profile.mjs [--models resnet20,resnet18]
 *     [--threads 1,2 | 1,1x2] [--rounds 5] [--steps 2] [--kernels relaxed|plain] [--conv-algorithm direct]
 *     [--by-shape] > profile.json
 *
 * A timer around each call costs about a microsecond; the figures are for comparing counts
 * and operations, not for the bench's images/s.
 */
import * as rg from "../src/mod.ts";
import { CpuBackend } from "../src/backend/cpu/index.ts";
import { PARTS_PER_THREAD, Runner } from "../src/backend/cpu/runner.ts";
import { MAX_PARTS } from "../src/backend/cpu/threads.ts";
import type { ConvGeometry } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { DEFAULT_BATCH, trainingStep } from "./throughput.ts";
import { log, median, option } from "./bench_args.ts";

/** Milliseconds and calls per operation key, for the step being timed. */
class Tally {
  ms = new Map<string, number>();
  calls = new Map<string, number>();
  add(key: string, ms: number): void {
    this.ms.set(key, (this.ms.get(key) ?? 0) + ms);
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }
}

/** A layer label for the calls that carry a geometry or a channel count (for --by-shape). */
function shapeOf(args: unknown[]): string {
  const objects = args.filter((a): a is Record<string, unknown> => a !== null && typeof a === "object");
  const g = objects.find((a) => "KH" in a) as ConvGeometry | undefined;
  if (g) return ` ${g.C}→${g.O} ${g.H}×${g.W} k${g.KH} s${g.SH}`;
  const bn = objects.find((a) => "HW" in a) as { C: number; HW: number } | undefined;
  if (bn) return ` C${bn.C} HW${bn.HW}`;
  const buf = objects.find((a) => typeof a.length === "number" && !Array.isArray(a)) as { length: number } | undefined;
  return buf ? ` n${buf.length}` : "";
}

/** Wrap every public method of CpuBackend.prototype; returns the tally the wrappers add to. */
function instrument(byShape: boolean): { current: Tally | null } {
  const target: { current: Tally | null } = { current: null };
  const proto = CpuBackend.prototype as unknown as Record<string, unknown>;
  let depth = 0;
  const skip = new Set(["constructor", "alloc", "free", "memory", "resetPeak", "setThreadCount", "setRelaxedSimd"]);
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name)!;
    if (typeof d.value !== "function" || skip.has(name)) continue;
    const inner = d.value as (...a: unknown[]) => unknown;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      if (depth > 0 || !target.current) return inner.apply(this, args);
      depth++;
      const t0 = performance.now();
      try {
        return inner.apply(this, args);
      } finally {
        depth--;
        target.current.add(byShape ? name + shapeOf(args) : name, performance.now() - t0);
      }
    };
  }
  return target;
}

/** A thread count as given: "2" (2 threads) or "1x2" (1 thread cutting kernels as for 2). */
interface Count { label: string; threads: number; cutAs: number }

function parseCount(s: string): Count {
  const m = /^(\d+)(?:x(\d+))?$/.exec(s);
  if (!m) throw new rg.ValueError(`step_profile --threads: ${JSON.stringify(s)} is neither N nor NxM`);
  return { label: s, threads: Number(m[1]), cutAs: Number(m[2] ?? 0) };
}

/**
 * Runner.parts and Runner.threads as if `cutAs.n` threads ran (n > 0), the real ones otherwise
 * (the backend sizes some splits by the thread count itself, e.g. one block per thread).
 */
function emulateSplits(): { n: number } {
  const cutAs = { n: 0 };
  const real = Runner.prototype.parts;
  Runner.prototype.parts = function (this: Runner, work: number, min: number): number {
    if (cutAs.n === 0) return real.call(this, work, min);
    return work >= min ? Math.min(MAX_PARTS, cutAs.n * PARTS_PER_THREAD) : 1;
  };
  const realThreads = Object.getOwnPropertyDescriptor(Runner.prototype, "threads")!.get!;
  Object.defineProperty(Runner.prototype, "threads", {
    get(this: Runner) {
      return cutAs.n === 0 ? realThreads.call(this) : cutAs.n;
    },
  });
  return cutAs;
}

async function main(): Promise<void> {
  installNodeThreads();
  enableNodeRelaxedSimd();
  const models = option("models", "resnet20,resnet18").split(",").filter(Boolean);
  const counts = option("threads", "1,2").split(",").map(parseCount);
  const threadCounts = counts.map((c) => c.label);
  const cutAs = emulateSplits();
  const use = async (label: string) => {
    const c = counts.find((x) => x.label === label)!;
    await rg.setThreads(c.threads);
    cutAs.n = c.cutAs;
  };
  const rounds = Number(option("rounds", "5"));
  const stepsPerRound = Number(option("steps", "2"));
  const kernels = option("kernels", "relaxed") as rg.CpuKernels;
  rg.setConvAlgorithm(option("conv-algorithm", "direct") as rg.ConvAlgorithm);
  const inEffect = await rg.setCpuKernels(kernels);
  const target = instrument(process.argv.includes("--by-shape"));
  const out: unknown[] = [];
  for (const name of models) {
    const batch = DEFAULT_BATCH[name] ?? 32;
    const { step, dispose } = trainingStep(name, batch);
    // per thread count: one Tally per timed step, and the step's wall time
    const tallies = new Map<string, { tally: Tally; stepMs: number }[]>(threadCounts.map((t) => [t, []]));
    for (const t of threadCounts) { // warm-up: tier-up, scratch growth, worker start
      await use(t);
      step();
      step();
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? threadCounts : [...threadCounts].reverse();
      for (const t of order) {
        await use(t);
        step();
        for (let s = 0; s < stepsPerRound; s++) {
          const tally = new Tally();
          target.current = tally;
          const t0 = performance.now();
          step();
          const stepMs = performance.now() - t0;
          target.current = null;
          tallies.get(t)!.push({ tally, stepMs });
        }
      }
    }
    await use(threadCounts[0]);
    await rg.setThreads(1);
    cutAs.n = 0;
    dispose();
    const keys = new Set<string>();
    for (const list of tallies.values()) for (const { tally } of list) for (const k of tally.ms.keys()) keys.add(k);
    const per = (t: string, k: string) => median(tallies.get(t)!.map(({ tally }) => tally.ms.get(k) ?? 0));
    const host = (t: string) => median(tallies.get(t)!.map(({ tally, stepMs }) => stepMs - [...tally.ms.values()].reduce((a, b) => a + b, 0)));
    const stepMs = (t: string) => median(tallies.get(t)!.map((x) => x.stepMs));
    const first = threadCounts[0], last = threadCounts[threadCounts.length - 1];
    const rows = [...keys].map((k) => ({
      op: k,
      calls: tallies.get(first)![0].tally.calls.get(k) ?? 0,
      ms: Object.fromEntries(threadCounts.map((t) => [t, per(t, k)])),
    }));
    rows.push({ op: "(host)", calls: 0, ms: Object.fromEntries(threadCounts.map((t) => [t, host(t)])) });
    const lost = (r: (typeof rows)[number]) => r.ms[last] - (r.ms[first] * parseCount(first).threads) / parseCount(last).threads;
    rows.sort((a, b) => lost(b) - lost(a));
    log(`${name} batch ${batch}, ${inEffect} kernels, ${rg.getConvAlgorithm()} convolutions; step ms ${threadCounts.map((t) => `${t}T ${stepMs(t).toFixed(1)}`).join(", ")}; speed-up ${(stepMs(first) / stepMs(last)).toFixed(2)}×`);
    log(`${"op".padEnd(56)} calls ${threadCounts.map((t) => `${t}T ms`.padStart(9)).join(" ")}   ×     lost`);
    for (const r of rows) {
      if (Math.max(...threadCounts.map((t) => r.ms[t])) < 0.05) continue;
      log(`${r.op.padEnd(56)} ${String(r.calls).padStart(5)} ${threadCounts.map((t) => r.ms[t].toFixed(2).padStart(9)).join(" ")} ${(r.ms[first] / r.ms[last]).toFixed(2).padStart(5)} ${lost(r).toFixed(2).padStart(8)}`);
    }
    out.push({ model: name, batch, kernels: inEffect, convAlgorithm: rg.getConvAlgorithm(), stepMs: Object.fromEntries(threadCounts.map((t) => [t, stepMs(t)])), rows });
  }
  console.log(JSON.stringify({ bench: "step-profile", interleaved: true, rounds, stepsPerRound, models: out }, null, 1));
}

await main();
