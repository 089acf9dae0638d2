/// <reference types="@webgpu/types" />
/**
 * Where a WebGPU training step spends its GPU time (Deno; a stage of bench/gpu-check.sh):
 * for each model, a few warm-up steps, the step's wall time unprofiled (median), then
 * `--steps` steps under gpu/profiler.ts, which times every dispatch with timestamp queries
 * where the adapter has them (each dispatch then runs in a pass of its own) and otherwise
 * replays each dispatch alone, timed on the host (approximate; the JSON says which). Prints
 * per step: the kernels grouped by pipeline (count, ms, share of the kernels' sum and of the
 * wall time) and the GEMM-shaped dispatches grouped by kernel and extents M×N×K (splits).
 * The JSON goes to stdout, the tables to stderr; with --out, the JSON is also written to that
 * file after each model (so a run stopped during the second model keeps the first's).
 *
 * With --infer, the step profiled is the model's inference (eval mode, no tape) instead.
 *
 *   deno run -A bench/gpu_profile.ts [--models resnet20:64,resnet18:32] [--steps 3] [--infer] [--replay] [--out FILE]
 */
import { renameSync, writeFileSync } from "node:fs";
import * as rg from "../src/mod.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import { DispatchProfiler, type DispatchTime } from "../gpu/profiler.ts";
import { trainingStep } from "./throughput.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const models = arg("models", "resnet20:64,resnet18:32").split(",").filter(Boolean).map((m) => {
  const [name, batch] = m.split(":");
  return { name, batch: Number(batch ?? 32) };
});
const steps = Number(arg("steps", "3"));
const infer = args.includes("--infer");
const WARM_UP_STEPS = 2;
const TIMED_STEPS = 3;

const gpu = await createWebGPUBackend({ allowFallback: true, optionalFeatures: ["timestamp-query"] });
if (!gpu) throw new rg.ValueError("gpu_profile: no WebGPU adapter in this runtime");
rg.registerBackend(gpu);
rg.setBackend("webgpu");

interface Group {
  key: string;
  countPerStep: number;
  msPerStep: number;
  shareOfKernels: number;
  shareOfStep: number;
}

/** Dispatches grouped by `by`, per step, largest first. */
function group(ds: DispatchTime[], by: (d: DispatchTime) => string, kernelNs: number, stepMs: number): Group[] {
  const groups = new Map<string, { count: number; ns: number }>();
  for (const d of ds) {
    const g = groups.get(by(d)) ?? { count: 0, ns: 0 };
    g.count++;
    g.ns += d.ns;
    groups.set(by(d), g);
  }
  return [...groups].map(([key, g]) => ({
    key, countPerStep: g.count / steps, msPerStep: g.ns / steps / 1e6,
    shareOfKernels: kernelNs ? g.ns / kernelNs : 0, shareOfStep: g.ns / steps / 1e6 / stepMs,
  })).sort((a, b) => b.msPerStep - a.msPerStep);
}

/** The figures first and the key last, whole: a convolution's key carries its 16 geometry constants. */
function table(title: string, rows: Group[]): string {
  const lines = [`count/step  ms/step  %kernels  %step  ${title}`];
  for (const r of rows) {
    lines.push(`${r.countPerStep.toFixed(1).padStart(10)} ${r.msPerStep.toFixed(3).padStart(8)} ` +
      `${(100 * r.shareOfKernels).toFixed(1).padStart(8)}% ${(100 * r.shareOfStep).toFixed(1).padStart(5)}%  ${r.key}`);
  }
  return lines.join("\n");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, unknown>[] = [];
let method = "";
const report = () => JSON.stringify({
  adapter: gpu.adapterDescription,
  method,
  timing: method === "timestamp-query"
    ? "GPU timestamps at the start and end of a compute pass per dispatch (timestampWrites), per step over the profiled steps"
    : "APPROXIMATE: no timestamp-query, so each dispatch was replayed alone after the steps and timed on the host (median of 3, less an empty submit's round trip)",
  steps,
  models: results,
}, null, 2);
const out = arg("out", "");
for (const { name, batch } of models) {
  const training = trainingStep(name, batch);
  const { dispose } = training;
  if (infer) training.net.eval();
  const step = infer ? () => rg.noGrad(() => training.net.forward(training.x).dispose()) : training.step;
  for (let i = 0; i < WARM_UP_STEPS; i++) {
    step();
    await gpu.synchronize();
  }
  const wall: number[] = [];
  for (let i = 0; i < TIMED_STEPS; i++) {
    const t0 = performance.now();
    step();
    await gpu.synchronize();
    wall.push(performance.now() - t0);
  }
  const stepMs = median(wall);
  const profiler = new DispatchProfiler(gpu.context, { forceReplay: args.includes("--replay") });
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    step();
    await gpu.synchronize();
  }
  const profiledStepMs = (performance.now() - t0) / steps;
  const profile = await profiler.stop();
  method = profile.method;
  dispose();
  const kernelNs = profile.dispatches.reduce((s, d) => s + d.ns, 0);
  const kernels = group(profile.dispatches, (d) => d.key, kernelNs, stepMs);
  const gemms = group(profile.dispatches.filter((d) => d.params.gM !== undefined),
    (d) => `${d.key} ${d.params.gM}×${d.params.gN}×${d.params.gK}${d.params.splits > 1 ? ` /${d.params.splits}` : ""}`,
    kernelNs, stepMs);
  const result = {
    model: name, batch, pass: infer ? "inference" : "training", stepMs, imagesPerSec: batch / (stepMs / 1000), profiledStepMs,
    dispatchesPerStep: profile.dispatches.length / steps, kernelMsPerStep: kernelNs / steps / 1e6,
    ...(profile.spanNs !== undefined ? { gpuSpanMsPerStep: profile.spanNs / steps / 1e6 } : {}),
    kernels, gemmShapes: gemms,
  };
  results.push(result);
  console.error(`\n${name}, batch ${batch}, ${result.pass}: step ${stepMs.toFixed(2)} ms unprofiled (${result.imagesPerSec.toFixed(1)} img/s), ` +
    `${profiledStepMs.toFixed(2)} ms profiled; ${result.dispatchesPerStep} dispatches, kernels ${result.kernelMsPerStep.toFixed(2)} ms` +
    (result.gpuSpanMsPerStep !== undefined ? `, GPU span ${result.gpuSpanMsPerStep.toFixed(2)} ms` : "") + ` per step (${profile.method})`);
  console.error(table("kernel (pipeline)", kernels));
  console.error(table("GEMM-shaped dispatch: kernel_tile M×N×K /splits", gemms));
  if (out) {
    writeFileSync(`${out}.part`, report());
    renameSync(`${out}.part`, out);
  }
}

console.log(report());
