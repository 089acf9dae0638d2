/**
 * Single CPU kernels timed call by call, to compare runtimes (Node against Deno) and V8 flags
 * kernel by kernel: the register-only madd loop, sgemm, a short elementwise kernel split across
 * the threads (mostly the workers' wake-up and join), and the main job's convolutions
 * (ResNet-20 on 1×28×28 at batch 128: each layer shape, forward, input gradient and weight
 * gradient) and its whole training step (`--only profile`: that step's time per kernel, and
 * what is left outside the kernels). For each it records the first call (cold: compiled
 * by the baseline tier, which a long wasm call never leaves), the second, and the median of
 * timed calls after a warm-up of at least a second; wall and process CPU milliseconds both,
 * so a run on a busy machine still says how much work a call was. One process measures one
 * runtime; the comparison is an interleaving of processes (bench/runtime_ab.sh):
 *
 *   node esbuild.config.mjs && node build/runtime_kernels.mjs [--threads 1] [--repeats 7] [--only peak,sgemm,conv,split,profile,step,infer]
 *   deno run -A bench/runtime_kernels.ts [the same flags]
 *
 * JSON on stdout, one line per kernel as it finishes on stderr.
 */
import * as rg from "../src/mod.ts";
import type { CpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry, DeviceBuffer } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { lcgValues } from "../test/support/conv3x3.ts";
import { Runner } from "../src/backend/cpu/runner.ts";
import { trainingStep } from "./throughput.ts";

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}
const threads = Number(option("threads", "1"));
const repeats = Number(option("repeats", "7"));
const only = option("only", "peak,sgemm,conv,step,infer").split(",");
const kernelChoice = option("kernels", "auto") as rg.CpuKernelChoice;
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Timing { firstMs: number; secondMs: number; medianMs: number; medianCpuMs: number; warmCalls: number }

/** First and second call, then at least a second of warm-up calls, then `repeats` timed calls. */
function measure(call: () => void): Timing {
  const once = () => {
    const t0 = performance.now();
    call();
    return performance.now() - t0;
  };
  const firstMs = once();
  const secondMs = once();
  let warmCalls = 0;
  for (const t0 = performance.now(); warmCalls < 2 || performance.now() - t0 < 1000; warmCalls++) call();
  const wall: number[] = [], cpu: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const c0 = cpuMs();
    wall.push(once());
    cpu.push(cpuMs() - c0);
  }
  return { firstMs, secondMs, medianMs: median(wall), medianCpuMs: median(cpu), warmCalls };
}

/** ResNet-20's convolutions on 1×28×28 (the main job), at its batch of 128. */
const MAIN_JOB_LAYERS = [
  { name: "stem 1→16 28²", C: 1, O: 16, H: 28, S: 1 },
  { name: "16→16 28²", C: 16, O: 16, H: 28, S: 1 },
  { name: "16→32 28²/2", C: 16, O: 32, H: 28, S: 2 },
  { name: "32→32 14²", C: 32, O: 32, H: 14, S: 1 },
  { name: "32→64 14²/2", C: 32, O: 64, H: 14, S: 2 },
  { name: "64→64 7²", C: 64, O: 64, H: 7, S: 1 },
];
const BATCH = 128;

/** The main job's training step: ResNet-20 on 1×28×28 at batch 128 (SGD with momentum). */
const mainJobStep = () => trainingStep("resnet20", BATCH, 1, 28);

/**
 * `--only profile`: where a training step's wall time goes, kernel by kernel: every kernel
 * call the CPU backend makes through its runner is timed (after three warm-up steps), and the
 * rest of the step (the JavaScript of the ops and the tape, allocation) is what is left.
 */
function profileStep(): void {
  const { step, dispose } = mainJobStep();
  const totals = new Map<string, { ms: number; calls: number }>();
  const exec = Runner.prototype.exec;
  let timing = false;
  Runner.prototype.exec = function (this: Runner, ...args: Parameters<Runner["exec"]>) {
    if (!timing) return exec.apply(this, args);
    const t0 = performance.now();
    try {
      return exec.apply(this, args);
    } finally {
      const entry = totals.get(args[0]) ?? { ms: 0, calls: 0 };
      entry.ms += performance.now() - t0;
      entry.calls++;
      totals.set(args[0], entry);
    }
  } as unknown as Runner["exec"];
  for (let i = 0; i < 3; i++) step();
  timing = true;
  let stepMs = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    step();
    stepMs += performance.now() - t0;
  }
  timing = false;
  Runner.prototype.exec = exec;
  dispose();
  const perStep = [...totals].map(([kernel, t]) => ({ kernel, msPerStep: t.ms / repeats, callsPerStep: t.calls / repeats }))
    .sort((a, b) => b.msPerStep - a.msPerStep);
  const inKernels = perStep.reduce((sum, k) => sum + k.msPerStep, 0);
  log(`step ${(stepMs / repeats).toFixed(1)} ms: kernels ${inKernels.toFixed(1)}, the rest ${(stepMs / repeats - inKernels).toFixed(1)}; ` +
    perStep.slice(0, 12).map((k) => `${k.kernel} ${k.msPerStep.toFixed(1)}`).join(", "));
  profile = { stepMs: stepMs / repeats, kernelsMs: inKernels, perStep };
}
let profile: unknown = null;

async function main(): Promise<void> {
  installNodeThreads();
  enableNodeRelaxedSimd();
  const kernels = await rg.setCpuKernels(kernelChoice);
  await rg.setThreads(threads);
  const be = rg.getBackend("cpu") as CpuBackend;
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node";
  const rows: Record<string, unknown>[] = [];
  const record = (name: string, work: number, t: Timing) => {
    rows.push({ name, gflop: work / 1e9, ...t, gflopsMedian: work / t.medianMs / 1e6 });
    log(`${runtime} ${name}: first ${t.firstMs.toFixed(1)} ms, second ${t.secondMs.toFixed(1)}, median ${t.medianMs.toFixed(2)} (cpu ${t.medianCpuMs.toFixed(1)})` +
      (work > 0 ? `, ${(work / t.medianMs / 1e6).toFixed(1)} GFLOP/s` : ""));
  };
  if (only.includes("peak")) record("simd peak 2e6", 2e6 * 96, measure(() => be.simdPeak(2_000_000)));
  if (only.includes("sgemm")) {
    for (const n of [256, 512]) {
      const a = rg.randn([n, n]), b = rg.randn([n, n]);
      record(`sgemm ${n}³`, 2 * n ** 3, measure(() => rg.matmul(a, b).dispose()));
      a.dispose();
      b.dispose();
    }
  }
  if (only.includes("conv")) {
    for (const [li, L] of MAIN_JOB_LAYERS.entries()) {
      const OH = Math.floor((L.H + 2 - 3) / L.S) + 1;
      const g: ConvGeometry = { N: BATCH, C: L.C, H: L.H, W: L.H, O: L.O, KH: 3, KW: 3, SH: L.S, SW: L.S, PH: 1, PW: 1, DH: 1, DW: 1, G: 1, OH, OW: OH };
      const xs = BATCH * L.C * L.H * L.H, ys = BATCH * L.O * OH * OH;
      const upload = (v: Float32Array): DeviceBuffer => { const buf = be.alloc(v.length); be.write(buf, v); return buf; };
      const x = upload(lcgValues(xs, 1 + li)), w = upload(lcgValues(L.O * L.C * 9, 2 + li)), dy = upload(lcgValues(ys, 3 + li));
      const y = be.alloc(ys), dx = be.alloc(xs), dw = be.alloc(L.O * L.C * 9);
      const flops = 2 * BATCH * L.O * OH * OH * L.C * 9;
      record(`conv ${L.name} forward`, flops, measure(() => be.conv2dForward(x, w, y, g)));
      if (li > 0) record(`conv ${L.name} input grad`, flops, measure(() => be.conv2dBackwardInput(dy, w, dx, g)));
      record(`conv ${L.name} weight grad`, flops, measure(() => be.conv2dBackwardWeight(dy, x, dw, g)));
      [x, w, dy, y, dx, dw].forEach((buf) => be.free(buf));
    }
  }
  if (only.includes("split")) {
    // A short elementwise kernel split across the threads: mostly the wake-up and join of the workers.
    const a = rg.randn([1 << 17]), b = rg.randn([1 << 17]);
    record("add 2^17 ×100 (split)", 0, measure(() => {
      for (let i = 0; i < 100; i++) rg.add(a, b).dispose();
    }));
    a.dispose();
    b.dispose();
  }
  if (only.includes("profile")) profileStep();
  if (only.includes("step") || only.includes("infer")) {
    const { net, step, dispose } = mainJobStep();
    if (only.includes("step")) record("resnet20 1×28² step b128", 0, measure(step));
    net.eval();
    if (only.includes("infer")) record("resnet20 1×28² inference b500", 0, measure(() => rg.noGrad(() => rg.tidy(() => net.forward(rg.zeros([500, 1, 28, 28])).dispose()))));
    dispose();
  }
  await rg.setThreads(1);
  console.log(JSON.stringify({ bench: "runtime-kernels", runtime, threads, kernels, repeats, rows, profile }));
}

await main();
