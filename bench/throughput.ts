/**
 * `npm run bench`: how fast a backend trains, against the machine's own ceiling and against
 * the references, measured in one process run. Medians over timed repeats after a warm-up.
 *
 * CPU (the default, run under Node by `npm run bench`): the SIMD128 madd ceiling of this
 * core (a register-only kernel, assembly/simd.ts), sgemm n³ GFLOP/s and its share of that
 * ceiling, and for each model (ResNet-20 at batch 64, ResNet-18 with the CIFAR stem at batch
 * 32; 3×32×32 inputs, SGD with momentum and weight decay) training and inference images/s at
 * each thread count, plus the peak bytes a training step allocates. Where the runtime has
 * relaxed SIMD, the ceiling, sgemm and each model's training at the largest thread count are
 * measured with the fused-multiply-add kernels too.
 * WebGPU (--backend webgpu): sgemm 1024³/4096³ and the models, with dispatches and submits
 * per training step (on a real GPU, with PyTorch on CUDA beside it: bench/gpu-check.sh).
 *
 * References, each run right after we time the same workload (so that nothing competes for
 * the cores, and both sides of a ratio come from the same minute of a noisy machine):
 *   --vs-torch  the same workloads in PyTorch (bench/torch_ref.py, Debian's python3-torch
 *               through /usr/bin/python3), with the ratios retrograd / PyTorch;
 *   --vs-tfjs   sgemm on TensorFlow.js's wasm backend (XNNPACK), one thread (bench/tfjs_ref.ts);
 *   --vs-jaxjs  with --backend webgpu under Deno: jax-js on its WebGPU device on the same adapter,
 *               matmul at each size and the training step and inference of each CIFAR ResNet of
 *               basic blocks (ResNet-20, ResNet-18), from our model's initial weights, each right
 *               after ours (bench/jaxjs_ref.ts), with the ratios retrograd / jax-js.
 * Other options: --threads 1,2 --models resnet20,resnet18 --batch N --sizes 256,1024
 * --repeats N --conv-algorithm direct|winograd|auto (the CPU's 3×3 convolutions; default: the library's, auto)
 * (an empty --models or --sizes leaves that part out). Prints a table on stderr and returns the JSON (bench/main.ts prints it).
 */
import { spawnSync } from "node:child_process";
import * as rg from "../src/mod.ts";
import { getTileLoads, tileLoadsTiming } from "../src/backend/cpu/index.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { median } from "./bench_args.ts";

/** The batch each benchmarked model runs at unless told otherwise. */
export const DEFAULT_BATCH: Record<string, number> = { resnet20: 64, resnet18: 32 };

/** Wait until the backend has finished queued work (a no-op on the CPU). */
async function settle(): Promise<void> {
  const backend = rg.getBackend() as { synchronize?: () => Promise<void> };
  await backend.synchronize?.();
}

/**
 * Run `fn` for at least a second (and twice): first-use allocations, pipeline compilation,
 * and wasm tier-up. A wasm call that starts in the engine's baseline tier stays there to its
 * end (no on-stack replacement), so one warm-up call is not enough for long kernels.
 */
async function warmUp(fn: () => void): Promise<void> {
  const t0 = performance.now();
  for (let calls = 0; calls < 2 || performance.now() - t0 < 1000; calls++) {
    fn();
    await settle();
  }
}

async function time(repeats: number, fn: () => void): Promise<number> {
  await warmUp(fn);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    await settle();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** GFLOP/s of the register-only madd loop (12 chains × 4 lanes × 2 FLOPs per round). */
async function simdPeak(): Promise<number> {
  const cpu = rg.getBackend() as unknown as { simdPeak(iters: number): number };
  const iters = 2_000_000;
  for (let i = 0; i < 30; i++) cpu.simdPeak(100_000); // reach the optimising tier in short calls
  return (iters * 96) / (await time(7, () => cpu.simdPeak(iters))) / 1e9;
}

async function sgemmGflops(n: number, repeats: number): Promise<number> {
  const a = rg.randn([n, n]);
  const b = rg.randn([n, n]);
  const seconds = await time(repeats, () => rg.matmul(a, b).dispose());
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / seconds / 1e9;
}

interface ModelResult {
  model: string;
  batch: number;
  threads: number;
  kernels: "plain" | "relaxed";
  trainImagesPerSec: number;
  inferImagesPerSec?: number;
  peakStepMiB?: number;
  dispatchesPerStep?: number;
  submitsPerStep?: number;
}

/** The benchmarked network: `name` for `channels`×`size`×`size` images and 10 classes, initialised from seed 0. */
function benchModel(name: string, channels = 3, size = 32): rg.nn.Module {
  rg.manualSeed(0);
  return rg.models.createModel(name, { inChannels: channels, numClasses: 10, imageSize: size });
}

/** The benchmarked optimiser's settings (jax-js's step takes the same, --vs-jaxjs). */
const BENCH_SGD = { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 };

/**
 * The benchmarked training step: `name` on random 3×32×32 images (or `channels`×`size`×`size`),
 * SGD with momentum and weight decay.
 */
export function trainingStep(name: string, batch: number, channels = 3, size = 32) {
  const net = benchModel(name, channels, size);
  const opt = new rg.optim.SGD(net.parameters(), BENCH_SGD);
  const x = rg.randn([batch, channels, size, size]);
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  const step = () => rg.tidy(() => {
    opt.zeroGrad();
    rg.crossEntropy(net.forward(x), labels).backward();
    opt.step();
  });
  const dispose = () => {
    net.dispose();
    for (const buffer of opt.stateDict().values()) buffer.dispose();
    x.dispose();
  };
  return { net, x, step, dispose };
}

async function model(name: string, batch: number, repeats: number, trainOnly: boolean) {
  const { net, x, step, dispose } = trainingStep(name, batch);
  const backend = rg.getBackend() as { stats?: () => { dispatches: number; submits: number } };
  const before = rg.memory().bytesInUse;
  rg.getBackend().resetPeak();
  const trainSeconds = await time(repeats, step);
  // From before the first step: gradients, momentum buffers, activations and temporaries.
  const peakStepMiB = (rg.memory().peakBytes - before) / 2 ** 20;
  const s0 = backend.stats?.();
  step();
  await settle();
  const s1 = backend.stats?.();
  let inferImagesPerSec: number | undefined;
  if (!trainOnly) {
    net.eval();
    inferImagesPerSec = batch / await time(repeats, () => rg.noGrad(() => net.forward(x).dispose()));
  }
  dispose();
  return {
    trainImagesPerSec: batch / trainSeconds, inferImagesPerSec, peakStepMiB,
    ...(s0 && s1 ? { dispatchesPerStep: s1.dispatches - s0.dispatches, submitsPerStep: s1.submits - s0.submits } : {}),
  };
}

interface TorchRef {
  torch: string;
  runs: { threads: number; sgemmGflops: Record<string, number>; models: { model: string; batch: number; trainImagesPerSec: number; inferImagesPerSec: number }[] }[];
  peakStepMiB: Record<string, number>;
}

/**
 * Run bench/torch_ref.py on one group of workloads. It needs the cores alone, so it runs
 * between ours; the bench calls it right after timing the same workloads itself.
 */
function torchRef(threads: number, models: [string, number][], sizes: number[], repeats: number, peakOnly = false): TorchRef {
  const args = [
    "bench/torch_ref.py", "--threads", String(threads), "--sizes", sizes.join(","),
    "--models", models.map(([m, b]) => `${m}:${b}`).join(","), "--repeats", String(repeats),
    ...(peakOnly ? ["--peak-only"] : []),
  ];
  const r = spawnSync("/usr/bin/python3", args, { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    throw new rg.ValueError(`bench --vs-torch: /usr/bin/python3 ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as TorchRef;
}

/** jax-js's figures (--vs-jaxjs): matmul GFLOP/s by size, the models it ran, and why it left others out. */
interface JaxjsRef {
  version: string;
  adapter?: string;
  matmulGflops: Record<string, number>;
  models: { model: string; batch: number; trainImagesPerSec: number; inferImagesPerSec: number }[];
  skipped: Record<string, string>;
}
interface Jaxjs {
  ref: typeof import("./jaxjs_ref.ts");
  workloads: import("./jaxjs_ref.ts").Jaxjs;
  result: JaxjsRef;
}

/** jax-js on its WebGPU device, loaded only when asked (a dev dependency of the bench alone). */
async function jaxjsReference(onGpu: boolean): Promise<Jaxjs> {
  if (!onGpu) throw new rg.ValueError("bench --vs-jaxjs: jax-js is compared on WebGPU only; add --backend webgpu (under Deno, whose navigator.gpu both use)");
  const ref = await import("./jaxjs_ref.ts");
  const workloads = await ref.loadJaxjs("webgpu", BENCH_SGD);
  if (!workloads) throw new rg.ValueError("bench --vs-jaxjs: jax-js found no WebGPU device in this runtime");
  return { ref, workloads, result: { version: ref.jaxjsVersion(), adapter: workloads.adapter(), matmulGflops: {}, models: [], skipped: {} } };
}

/** jax-js's training step and inference of `name` from the initial weights of ours (the same network, bench/jaxjs_ref.ts). */
async function jaxjsModel(jaxjs: Jaxjs, name: string, batch: number, repeats: number): Promise<void> {
  const net = benchModel(name);
  const weights = await jaxjs.ref.weightsOf(net);
  net.dispose();
  const why = jaxjs.ref.notUnderstood(weights);
  if (why) jaxjs.result.skipped[name] = why;
  else jaxjs.result.models.push({ model: name, batch, ...await jaxjs.workloads.resnet(weights, batch, repeats) });
}

const fmt = (x: number | undefined, digits = 1) => x === undefined ? "-" : x.toFixed(digits);
const ratio = (a: number | undefined, b: number | undefined) => a !== undefined && b ? `${(a / b).toFixed(2)}×` : "-";

/** The error class of the retrograd this bench runs (dist/bench.mjs bundles its own copy). */
export const BenchErrorBase = rg.RetrogradError;

export async function runBench(args: readonly string[]) {
  installNodeThreads(); // no-ops under Deno, which has web Workers and relaxed SIMD
  enableNodeRelaxedSimd();
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const backendName = arg("backend", "cpu");
  const onGpu = backendName === "webgpu";
  if (onGpu) {
    const gpu = await rg.createWebGPUBackend({ allowFallback: true });
    if (!gpu) throw new rg.ValueError("bench --backend webgpu: no WebGPU adapter in this runtime");
    rg.registerBackend(gpu);
  }
  const backend = rg.setBackend(backendName);
  const convAlgorithm = arg("conv-algorithm", rg.getConvAlgorithm()) as rg.ConvAlgorithm;
  rg.setConvAlgorithm(convAlgorithm);
  const repeats = Number(arg("repeats", "5"));
  const models = arg("models", arg("model", "resnet20,resnet18")).split(",").filter(Boolean)
    .map((m): [string, number] => [m, Number(arg("batch", String(DEFAULT_BATCH[m] ?? 32)))]);
  const sizes = arg("sizes", onGpu ? "1024,4096" : "256,1024").split(",").filter(Boolean).map(Number);
  const threadList = arg("threads", "1,2") ?? "";
  const threadCounts = onGpu ? [1] : threadList.split(",").map(Number);
  if (!threadCounts.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new rg.ValueError(`bench --threads: must be a comma-separated list of integers ≥ 1, got ${JSON.stringify(threadList)}`);
  }
  const vsTorch = args.includes("--vs-torch") && !onGpu;
  const vsTfjs = args.includes("--vs-tfjs") && !onGpu;
  const jaxjs = args.includes("--vs-jaxjs") ? await jaxjsReference(onGpu) : undefined;

  // PyTorch's figures, gathered workload by workload right after ours (--vs-torch).
  const torch: TorchRef | undefined = vsTorch ? { torch: "", runs: [], peakStepMiB: {} } : undefined;
  const addTorch = (threads: number, models: [string, number][], sizes: number[]) => {
    if (!torch) return;
    const ref = torchRef(threads, models, sizes, repeats);
    torch.torch = ref.torch;
    for (const run of ref.runs) {
      const into = torch.runs.find((r) => r.threads === run.threads);
      if (!into) torch.runs.push(run);
      else { Object.assign(into.sgemmGflops, run.sgemmGflops); into.models.push(...run.models); }
    }
  };
  let tfjs: Awaited<ReturnType<typeof import("./tfjs_ref.ts").tfjsSgemm>> | undefined;
  const simdPeakGflops: Record<string, number> = {};
  const sgemm: { n: number; threads: number; kernels: string; gflops: number; pctOfPeak?: number }[] = [];
  const results: ModelResult[] = [];
  // What "auto" chooses here (the CLI's and library's default), before the variants force a build.
  const defaultKernels = onGpu ? undefined : {
    defaultKernels: await rg.setCpuKernels("auto"), relaxedMadd: rg.relaxedMaddRounding(),
    plainTileLoads: getTileLoads(), plainTileLoadsProbe: tileLoadsTiming(),
  };
  const relaxedAvailable = !onGpu && !(await rg.setDeterministic(false));
  await rg.setDeterministic(true);
  const variants = relaxedAvailable ? ["plain", "relaxed"] : ["plain"];

  for (const variant of onGpu ? [] : variants) {
    await rg.setDeterministic(variant === "plain");
    await rg.setThreads(1);
    simdPeakGflops[variant] = await simdPeak();
  }
  for (const threads of threadCounts) {
    const inEffect = onGpu ? 1 : await rg.setThreads(threads);
    for (const variant of inEffect === 1 ? variants : ["plain"]) {
      if (!onGpu) await rg.setDeterministic(variant === "plain");
      for (const n of sizes) {
        const gflops = await sgemmGflops(n, n <= 256 ? 20 : repeats);
        const peak = simdPeakGflops[variant];
        sgemm.push({ n, threads: inEffect, kernels: variant, gflops, ...(peak ? { pctOfPeak: 100 * gflops / (peak * inEffect) } : {}) });
        if (jaxjs) Object.assign(jaxjs.result.matmulGflops, await jaxjs.workloads.matmulGflops([n], repeats));
      }
    }
    addTorch(inEffect, [], sizes);
    if (vsTfjs && inEffect === 1) tfjs = await (await import("./tfjs_ref.ts")).tfjsSgemm(sizes, repeats);
    await rg.setDeterministic(true);
    for (const [m, batch] of models) {
      const { peakStepMiB, ...r } = await model(m, batch, repeats, false);
      // The same allocations at every thread count: reported once.
      results.push({ model: m, batch, threads: inEffect, kernels: "plain", ...r, ...(threads === threadCounts[0] ? { peakStepMiB } : {}) });
      addTorch(inEffect, [[m, batch]], []);
      if (jaxjs) await jaxjsModel(jaxjs, m, batch, repeats);
    }
    if (relaxedAvailable && threads === threadCounts[threadCounts.length - 1]) {
      await rg.setDeterministic(false);
      for (const [m, batch] of models) {
        const r = await model(m, batch, repeats, true);
        results.push({ model: m, batch, threads: inEffect, kernels: "relaxed", trainImagesPerSec: r.trainImagesPerSec });
      }
      await rg.setDeterministic(true);
    }
  }
  await rg.setThreads(1);

  if (torch) torch.peakStepMiB = torchRef(1, models, [], repeats, true).peakStepMiB;

  const torchModel = (m: string, threads: number) => torch?.runs.find((r) => r.threads === threads)?.models.find((x) => x.model === m);
  const torchSgemm = (n: number, threads: number) => torch?.runs.find((r) => r.threads === threads)?.sgemmGflops[String(n)];
  const speedup = (m: string) => {
    const one = results.find((r) => r.model === m && r.threads === 1 && r.kernels === "plain");
    const two = results.find((r) => r.model === m && r.threads === 2 && r.kernels === "plain");
    return one && two ? two.trainImagesPerSec / one.trainImagesPerSec : undefined;
  };
  /** A model row's jax-js figures and our ratios to them (--vs-jaxjs). */
  const jaxjsColumns = (r: ModelResult) => {
    const peer = jaxjs?.result.models.find((x) => x.model === r.model && x.batch === r.batch);
    return peer ? {
      jaxjsTrainImagesPerSec: peer.trainImagesPerSec, jaxjsInferImagesPerSec: peer.inferImagesPerSec,
      trainRatioToJaxjs: r.trainImagesPerSec / peer.trainImagesPerSec,
      ...(r.inferImagesPerSec !== undefined ? { inferRatioToJaxjs: r.inferImagesPerSec / peer.inferImagesPerSec } : {}),
    } : {};
  };
  const result = {
    runtime: typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node",
    backend: backend.name,
    adapter: (backend as { adapterDescription?: string }).adapterDescription,
    ...(onGpu ? {} : { convAlgorithm }),
    ...defaultKernels,
    simdPeakGflops,
    sgemm: sgemm.map((s) => {
      const peer = jaxjs?.result.matmulGflops[String(s.n)];
      return { ...s, ...(peer ? { jaxjsGflops: peer, ratioToJaxjs: s.gflops / peer } : {}) };
    }),
    models: results.map((r) => ({
      ...r,
      ...jaxjsColumns(r),
      ...(torch ? { torchTrainImagesPerSec: torchModel(r.model, r.threads)?.trainImagesPerSec } : {}),
      ...(torch && r.kernels === "plain" ? {
        torchInferImagesPerSec: torchModel(r.model, r.threads)?.inferImagesPerSec,
        torchPeakStepMiB: r.peakStepMiB !== undefined ? torch.peakStepMiB[r.model] : undefined,
      } : {}),
    })),
    twoThreadSpeedup: Object.fromEntries(models.map(([m]) => [m, speedup(m)])),
    ...(torch ? { torch: torch.torch } : {}),
    ...(tfjs ? { tfjs } : {}),
    ...(jaxjs ? { jaxjs: jaxjs.result } : {}),
  };

  const lines = [`retrograd bench: ${result.runtime}, ${backend.name}${result.adapter ? ` (${result.adapter})` : ""}${onGpu ? "" : `, ${convAlgorithm} convolutions, default kernels ${defaultKernels?.defaultKernels} (relaxed_madd ${defaultKernels?.relaxedMadd}), plain build's tile loads ${defaultKernels?.plainTileLoads}`}`];
  if (!onGpu) lines.push(`SIMD madd ceiling, 1 thread: ${Object.entries(simdPeakGflops).map(([k, g]) => `${k} ${fmt(g)} GFLOP/s`).join(", ")}`);
  if (jaxjs) lines.push(`jax-js ${jaxjs.result.version} on WebGPU (${jaxjs.result.adapter ?? "adapter not reported"}), jit-compiled`);
  lines.push("sgemm        threads kernels   GFLOP/s  %ceiling" + (torch ? "  PyTorch" : "") + (tfjs ? "  TF.js(1T)  ×TF.js" : "") + (jaxjs ? "   jax-js  ×jax-js" : ""));
  for (const s of result.sgemm) {
    const tf = s.threads === 1 ? tfjs?.sgemmGflops[String(s.n)] : undefined;
    lines.push(`${`${s.n}³`.padEnd(12)} ${String(s.threads).padStart(7)} ${s.kernels.padEnd(9)} ${fmt(s.gflops, onGpu ? 2 : 1).padStart(7)} ${fmt(s.pctOfPeak, 0).padStart(8)}%` +
      (torch ? ` ${fmt(torchSgemm(s.n, s.threads)).padStart(8)}` : "") + (tfjs ? ` ${fmt(tf).padStart(10)} ${ratio(s.gflops, tf).padStart(7)}` : "") +
      (jaxjs ? ` ${fmt(s.jaxjsGflops, 2).padStart(8)} ${ratio(s.gflops, s.jaxjsGflops).padStart(8)}` : ""));
  }
  lines.push("model     batch threads kernels  train img/s  infer img/s  peak MiB" + (torch ? "  | PyTorch train  infer  peak MiB  | train ratio" : "") +
    (jaxjs ? "  | jax-js train  infer  | ×train  ×infer" : ""));
  for (const r of result.models) {
    const t = r as typeof r & { torchTrainImagesPerSec?: number; torchInferImagesPerSec?: number; torchPeakStepMiB?: number };
    const j = r as typeof r & { jaxjsTrainImagesPerSec?: number; jaxjsInferImagesPerSec?: number };
    lines.push(`${r.model.padEnd(9)} ${String(r.batch).padStart(5)} ${String(r.threads).padStart(7)} ${r.kernels.padEnd(8)} ${fmt(r.trainImagesPerSec).padStart(11)} ${fmt(r.inferImagesPerSec).padStart(12)} ${fmt(r.peakStepMiB).padStart(9)}` +
      (r.dispatchesPerStep !== undefined ? `  ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submits per step` : "") +
      (torch ? `  | ${fmt(t.torchTrainImagesPerSec).padStart(13)} ${fmt(t.torchInferImagesPerSec).padStart(6)} ${fmt(t.torchPeakStepMiB).padStart(9)}  | ${ratio(r.trainImagesPerSec, t.torchTrainImagesPerSec).padStart(11)}` : "") +
      (jaxjs ? `  | ${fmt(j.jaxjsTrainImagesPerSec).padStart(12)} ${fmt(j.jaxjsInferImagesPerSec).padStart(6)}  | ${ratio(r.trainImagesPerSec, j.jaxjsTrainImagesPerSec).padStart(6)} ${ratio(r.inferImagesPerSec, j.jaxjsInferImagesPerSec).padStart(7)}` : ""));
  }
  for (const [m, why] of Object.entries(jaxjs?.result.skipped ?? {})) lines.push(`jax-js: ${m} left out, ${why}`);
  for (const [m, s] of Object.entries(result.twoThreadSpeedup)) if (s) lines.push(`${m}: 2-thread training speed-up ${s.toFixed(2)}×`);
  console.error(lines.join("\n"));
  return result;
}
