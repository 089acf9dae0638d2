/// <reference types="@webgpu/types" />
/**
 * Where the HOST spends a WebGPU training step (Deno): the JavaScript that records the step's
 * dispatches, the submit, and the wait for the GPU. That cost does not depend on the GPU's
 * speed, so it can be measured on lavapipe as well as on a real GPU (where the step's GPU time
 * comes from bench/gpu_profile.ts instead).
 *
 * For each model, after warm-up steps:
 * - clean (nothing wrapped, median over --steps): `step` = `record` + `flush` + `wait`, where
 *   `record` is step() (the autograd graph, the ops, every dispatch recorded, and the submits
 *   made every dispatchesPerSubmit dispatches on the way), `flush` the backend's flush() of
 *   the rest (uniform upload, finish, submit), `wait` the synchronize() after it (the GPU's
 *   remaining time plus the runtime's completion latency); then a synchronize() with nothing
 *   pending: that latency alone (Deno polls the device, then sleeps 10 ms before it looks
 *   again). `step` is what a bench that waits after every step times.
 * - instrumented (the same steps with every layer's entry points wrapped in timers): the
 *   record time split by layer, as self time: autograd and ops (everything above the backend),
 *   the backend's methods (src/backend/webgpu.ts), the plumbing (gpu/device.ts), pipeline
 *   lookup, uniform packing, and the WebGPU API calls themselves (bind groups, pass and
 *   encoder commands, buffer creation), with counts per step. The timers add their own cost
 *   (a calibrated estimate is printed, and the instrumented total beside the clean one).
 *
 * With --per-submit 32,256 each model is measured at each of those dispatchesPerSubmit (how
 * often the context submits while recording; see gpu/device.ts), step time included.
 *
 *   deno run -A bench/gpu_host.ts [--models resnet20:64,resnet18:32] [--steps 5] [--per-submit 32,256] [--out FILE]
 * On lavapipe use a small batch (resnet20:2): the recording does not depend on it, the wait does.
 * JSON on stdout (and in --out), a table on stderr.
 */
import { writeFileSync } from "node:fs";
import process from "node:process";
import * as rg from "../src/mod.ts";
import { createWebGPUBackend, WebGPUBackend } from "../src/backend/webgpu.ts";
import { GpuContext } from "../gpu/device.ts";
import { trainingStep } from "./throughput.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const models = arg("models", "resnet20:64").split(",").filter(Boolean).map((m) => {
  const [name, batch] = m.split(":");
  return { name, batch: Number(batch ?? 32) };
});
const steps = Number(arg("steps", "5"));
const WARM_UP_STEPS = 2;

const maybeGpu = await createWebGPUBackend({ allowFallback: true });
if (!maybeGpu) throw new rg.ValueError("gpu_host: no WebGPU adapter in this runtime");
const gpu = maybeGpu;
rg.registerBackend(gpu);
rg.setBackend("webgpu");

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- instrumentation: self time per layer ----

/** Self milliseconds and calls per layer while instrumented. */
const layers = new Map<string, { ms: number; calls: number }>();
/** The open timers, innermost last; each accumulates the time of its nested calls. */
const open: { layer: string; start: number; nested: number }[] = [];

function enter(layer: string): void {
  open.push({ layer, start: performance.now(), nested: 0 });
}
function leave(): void {
  const t = open.pop()!;
  const total = performance.now() - t.start;
  const l = layers.get(t.layer) ?? { ms: 0, calls: 0 };
  l.ms += total - t.nested;
  l.calls++;
  layers.set(t.layer, l);
  if (open.length > 0) open[open.length - 1].nested += total;
}

/** Wrap `names` of `target` (an object or prototype) so their self time goes to `layer`; returns the undo. */
function wrap(target: object, names: readonly string[], layer: (name: string) => string): () => void {
  const t = target as Record<string, unknown>;
  const originals = names.map((n) => [n, Object.getOwnPropertyDescriptor(t, n)] as const);
  for (const n of names) {
    const fn = t[n] as (...a: unknown[]) => unknown;
    const label = layer(n);
    t[n] = function (this: unknown, ...a: unknown[]) {
      enter(label);
      try {
        return fn.apply(this, a);
      } finally {
        leave();
      }
    };
  }
  return () => {
    for (const [n, d] of originals) {
      if (d) Object.defineProperty(t, n, d);
      else delete t[n];
    }
  };
}

const methodsOf = (proto: object, skip: readonly string[] = []) =>
  Object.getOwnPropertyNames(proto).filter((n) =>
    n !== "constructor" && !skip.includes(n) && typeof Object.getOwnPropertyDescriptor(proto, n)?.value === "function"
  );

/** Everything between ops and the GPU, wrapped; the API calls get a layer each. */
function instrument(): () => void {
  const ctxProto = GpuContext.prototype as unknown as Record<string, unknown>;
  const undo = [
    // The backend's methods, less the tiny argument helpers (their timers would cost more than they do).
    wrap(WebGPUBackend.prototype, methodsOf(WebGPUBackend.prototype, ["read", "synchronize", "flush", "buf", "opt", "need"]),
      () => "backend (webgpu.ts)"),
    wrap(ctxProto, ["dispatch", "alloc", "free", "write", "copy"], (n) => `plumbing: ${n}`),
    wrap(ctxProto, ["pipeline"], () => "pipeline lookup"),
    wrap(ctxProto, ["packUniforms"], () => "uniform packing"),
    wrap(GPUDevice.prototype, ["createBindGroup"], () => "api: createBindGroup"),
    wrap(GPUDevice.prototype, ["createBuffer", "createCommandEncoder"], (n) => `api: ${n}`),
    wrap(GPUCommandEncoder.prototype, ["beginComputePass", "copyBufferToBuffer"], (n) => `api: ${n}`),
    wrap(GPUCommandEncoder.prototype, ["finish"], () => "submit: encoder.finish"),
    wrap(GPUQueue.prototype, ["submit", "writeBuffer"], (n) => `submit: queue.${n}`),
    wrap(GPUComputePassEncoder.prototype, ["setPipeline", "setBindGroup", "dispatchWorkgroups", "end"],
      () => "api: pass commands"),
  ];
  return () => undo.reverse().forEach((u) => u());
}

/** The cost of one wrapped call's timers, in ms (self time of a no-op, plus the outer share). */
function timerCost(): number {
  const probe = { noop() {} };
  const undo = wrap(probe, ["noop"], () => "calibration");
  const n = 20000;
  const t0 = performance.now();
  enter("calibration outer");
  for (let i = 0; i < n; i++) probe.noop();
  leave();
  const perCall = (performance.now() - t0) / n;
  undo();
  layers.clear();
  return perCall;
}

// ---- the measurement ----

interface Row {
  layer: string;
  msPerStep: number;
  callsPerStep: number;
  usPerDispatch: number;
}

const results: Record<string, unknown>[] = [];
const report = () => JSON.stringify({ adapter: gpu.adapterDescription, steps, models: results }, null, 2);
timerCost(); // once to compile the timers
const wrapperMs = timerCost();

/** One model at one dispatchesPerSubmit: the clean steps, then the instrumented ones. */
async function measure(name: string, batch: number, step: () => void, perSubmit: number) {
  gpu.context.dispatchesPerSubmit = perSubmit;
  for (let i = 0; i < WARM_UP_STEPS; i++) {
    step();
    await gpu.synchronize();
  }
  const total: number[] = [], record: number[] = [], recordCpu: number[] = [], submit: number[] = [], wait: number[] = [];
  const idle: number[] = [];
  let dispatches = 0, submits = 0, bindGroups = 0;
  for (let i = 0; i < steps; i++) {
    const s0 = gpu.stats(), b0 = gpu.context.bindGroupsCreated;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    step();
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    gpu.flush();
    const t2 = performance.now();
    await gpu.synchronize();
    const t3 = performance.now();
    await gpu.synchronize();
    const t4 = performance.now();
    const s1 = gpu.stats();
    dispatches = s1.dispatches - s0.dispatches;
    submits = s1.submits - s0.submits;
    bindGroups += gpu.context.bindGroupsCreated - b0;
    total.push(t3 - t0);
    record.push(t1 - t0);
    recordCpu.push((c1.user + c1.system) / 1000);
    submit.push(t2 - t1);
    wait.push(t3 - t2);
    idle.push(t4 - t3);
  }

  layers.clear();
  const undo = instrument();
  let instrumentedMs = 0;
  try {
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      enter("autograd, ops, tensors");
      step();
      leave();
      instrumentedMs += performance.now() - t0;
      enter("submit: the rest of flush()");
      gpu.flush();
      leave();
      await gpu.synchronize();
    }
  } finally {
    undo();
  }

  const recordMs = median(record);
  const rows: Row[] = [...layers].map(([layer, l]) => ({
    layer, msPerStep: l.ms / steps, callsPerStep: l.calls / steps, usPerDispatch: (1000 * l.ms / steps) / dispatches,
  })).sort((a, b) => b.msPerStep - a.msPerStep);
  const wrappedCalls = rows.reduce((s, r) => s + r.callsPerStep, 0);
  const result = {
    model: name, batch, dispatchesPerSubmit: perSubmit, dispatchesPerStep: dispatches, submitsPerStep: submits,
    bindGroupsCreatedPerStep: bindGroups / steps, stepMs: median(total), imagesPerSec: batch / (median(total) / 1000),
    recordMs, usPerDispatch: 1000 * recordMs / dispatches, recordCpuMs: median(recordCpu), recordMinMs: Math.min(...record),
    submitMs: median(submit), waitMs: median(wait), idleSyncMs: median(idle), instrumentedRecordMs: instrumentedMs / steps,
    timerCostMsPerStep: wrappedCalls * wrapperMs, layers: rows,
  };
  const f = (x: number, d = 2) => x.toFixed(d);
  console.error(`\n${name}, batch ${batch} (${gpu.adapterDescription}), a submit every ${perSubmit} dispatches: ` +
    `${dispatches} dispatches, ${submits} submit(s), ${f(result.bindGroupsCreatedPerStep, 1)} bind groups created per step\n` +
    `  step ${f(result.stepMs)} ms (${f(result.imagesPerSec, 1)} img/s) = record ${f(recordMs)} ms (${f(result.usPerDispatch, 1)} µs per dispatch; ` +
    `CPU time ${f(result.recordCpuMs)} ms; fastest ${f(result.recordMinMs)} ms; the submits within included) + flush ${f(result.submitMs)} ms ` +
    `+ wait ${f(result.waitMs)} ms; a synchronize with nothing pending ${f(result.idleSyncMs)} ms (medians of ${steps})\n` +
    `  instrumented record ${f(result.instrumentedRecordMs)} ms, of which about ${f(result.timerCostMsPerStep)} ms are the timers' own ` +
    `(${f(wrappedCalls, 0)} wrapped calls × ${f(1000 * wrapperMs, 2)} µs)`);
  console.error(`  ${"layer (self time)".padEnd(28)} ms/step  µs/dispatch  calls/step`);
  for (const r of rows) {
    console.error(`  ${r.layer.padEnd(28)} ${f(r.msPerStep, 3).padStart(7)} ${f(r.usPerDispatch, 1).padStart(12)} ${f(r.callsPerStep, 0).padStart(11)}`);
  }
  return result;
}

const perSubmit = arg("per-submit", String(gpu.context.dispatchesPerSubmit)).split(",").map(Number);
for (const { name, batch } of models) {
  const { step, dispose } = trainingStep(name, batch);
  for (const k of perSubmit) {
    results.push(await measure(name, batch, step, k));
    const out = arg("out", "");
    if (out) writeFileSync(out, report());
  }
  dispose();
}
console.log(report());
gpu.destroy();
