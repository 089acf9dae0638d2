/**
 * `npm run bench`: throughput of a backend. sgemm GFLOP/s and ResNet-20 (batch 64, 3×32×32)
 * training and inference images/s, medians over timed repeats after a warm-up, plus the peak
 * bytes of a training step; on WebGPU also dispatches and submits per training step. Prints
 * a summary on stderr and returns JSON. Options: --backend cpu|webgpu, --batch N,
 * --repeats N, --model resnet20|resnet18, --sizes 256,1024, --threads N (CPU threads; the
 * workers are stopped again at the end). Run by bench/main.ts
 * (`npm run bench`) and by `retrograd bench`.
 */
import * as rg from "../src/mod.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wait until the backend has finished queued work (a no-op on the CPU). */
async function settle(): Promise<void> {
  const backend = rg.getBackend() as { synchronize?: () => Promise<void> };
  await backend.synchronize?.();
}

async function time(repeats: number, fn: () => void): Promise<number> {
  fn(); // warm-up: first-use allocations, wasm tier-up, pipeline compilation
  await settle();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    await settle();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

async function sgemm(n: number, repeats: number): Promise<number> {
  const a = rg.randn([n, n]);
  const b = rg.randn([n, n]);
  const seconds = await time(repeats, () => rg.matmul(a, b).dispose());
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / seconds / 1e9;
}

async function resnet(modelName: string, batch: number, repeats: number) {
  rg.manualSeed(0);
  const model = modelName === "resnet18"
    ? rg.models.resnet18({ numClasses: 10, stem: "cifar" })
    : rg.models.resnet20({ numClasses: 10 });
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const x = rg.randn([batch, 3, 32, 32]);
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  const step = () => rg.tidy(() => {
    opt.zeroGrad();
    rg.crossEntropy(model.forward(x), labels).backward();
    opt.step();
  });
  const backend = rg.getBackend() as { stats?: () => { dispatches: number; submits: number } };
  const before = rg.memory().bytesInUse;
  rg.getBackend().resetPeak();
  const trainSeconds = await time(repeats, step);
  const peakStepBytes = rg.memory().peakBytes - before;
  const s0 = backend.stats?.();
  step();
  await settle();
  const s1 = backend.stats?.();
  model.eval();
  const inferSeconds = await time(repeats, () => rg.noGrad(() => model.forward(x).dispose()));
  model.dispose();
  x.dispose();
  return {
    model: modelName, batch,
    trainImagesPerSec: batch / trainSeconds,
    inferImagesPerSec: batch / inferSeconds,
    peakStepMiB: peakStepBytes / 2 ** 20,
    ...(s0 && s1 ? { dispatchesPerStep: s1.dispatches - s0.dispatches, submitsPerStep: s1.submits - s0.submits } : {}),
  };
}

export async function runBench(args: readonly string[]) {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const backendName = arg("backend", "cpu");
  if (backendName === "webgpu") {
    const gpu = await rg.createWebGPUBackend({ allowFallback: true });
    if (!gpu) throw new rg.ValueError("bench --backend webgpu: no WebGPU adapter in this runtime");
    rg.registerBackend(gpu);
  }
  const backend = rg.setBackend(backendName);
  const repeats = Number(arg("repeats", "5"));
  const model = arg("model", "resnet20");
  const batch = Number(arg("batch", model === "resnet18" ? "32" : "64"));
  const sizes = arg("sizes", backendName === "webgpu" ? "1024,4096" : "256,1024").split(",").map(Number);
  const threads = await rg.setThreads(Number(arg("threads", "1")));
  const sgemmGflops: Record<string, number> = {};
  for (const n of sizes) sgemmGflops[String(n)] = await sgemm(n, n <= 256 ? 20 : repeats);
  const result = {
    backend: backend.name,
    adapter: (backend as { adapterDescription?: string }).adapterDescription,
    threads,
    sgemmGflops,
    resnet: await resnet(model, batch, repeats),
  };
  await rg.setThreads(1);
  console.error(
    `${backend.name} (${threads} thread${threads > 1 ? "s" : ""}): sgemm ${Object.entries(sgemmGflops).map(([n, g]) => `${n}³ ${g.toFixed(1)} GFLOP/s`).join(", ")}\n` +
    `${model} batch ${batch}: train ${result.resnet.trainImagesPerSec.toFixed(1)} img/s, ` +
    `inference ${result.resnet.inferImagesPerSec.toFixed(1)} img/s, peak step memory ${result.resnet.peakStepMiB.toFixed(1)} MiB`,
  );
  return result;
}
