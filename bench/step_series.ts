/**
 * The bench's training step (bench/throughput.ts: ResNet-20 at batch 64 or ResNet-18 at 32,
 * 3×32×32, SGD with momentum) timed step by step from the very first one, at each thread count
 * in turn: wall and process-CPU milliseconds of every step. What a median after a warm-up
 * hides: whether a runtime's kernels reach their steady speed at once, late (tier-up), or never;
 * `--no-liftoff` or `--wasm-tiering-budget` runs beside a plain one say whether tier-up is
 * what a gap between runtimes is made of. Interleave processes of the variants to compare them
 * (this machine's speed drifts within minutes):
 *
 *   node esbuild.config.mjs && node build/step_series.mjs [--model resnet20] [--threads 1,2,1]
 *     [--kernels plain|relaxed|auto] [--steps 20]
 *   deno run -A [--v8-flags=--no-liftoff] bench/step_series.ts [the same flags]
 *
 * One JSON line on stdout: per thread count, the steps' wall and CPU ms and the median wall ms
 * of the second half of the steps.
 */
import * as rg from "../src/mod.ts";
import { getTileLoads } from "../src/backend/cpu/index.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { trainingStep } from "./throughput.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const modelName = option("model", "resnet20");
const threadList = option("threads", "1").split(",").map(Number);
const steps = Number(option("steps", "20"));
const kernels = option("kernels", "plain") as rg.CpuKernelChoice;
if (!(Number.isInteger(steps) && steps >= 1)) throw new rg.ValueError(`step_series --steps: must be an integer ≥ 1, got ${option("steps", "")}`);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

installNodeThreads();
enableNodeRelaxedSimd();
await rg.setCpuKernels(kernels);
const { step, dispose } = trainingStep(modelName, modelName === "resnet18" ? 32 : 64);
const series: { threads: number; wall: number[]; cpu: number[] }[] = [];
for (const threads of threadList) {
  await rg.setThreads(threads);
  const wall: number[] = [], cpu: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now(), c0 = cpuMs();
    step();
    wall.push(Math.round(performance.now() - t0));
    cpu.push(Math.round(cpuMs() - c0));
  }
  series.push({ threads, wall, cpu });
}
dispose();
await rg.setThreads(1);
const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(JSON.stringify({ runtime, modelName, kernels, tileLoads: getTileLoads(), series: series.map((s) => ({ ...s, medianLast: median(s.wall.slice(-Math.ceil(steps / 2))) })) }));
