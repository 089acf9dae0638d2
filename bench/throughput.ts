/**
 * `npm run bench`: CPU-backend throughput. sgemm GFLOP/s (256³, 1024³) and ResNet-20
 * (batch 64, 3×32×32) training and inference images/s, medians over timed repeats after a
 * warm-up, plus the peak bytes of a training step. Prints a table on stderr and JSON on
 * stdout. Options: --batch N, --repeats N, --model resnet20|resnet18. Run by bench/main.ts
 * (`npm run bench`) and by `retrograd bench`.
 */
import * as rg from "../src/mod.ts";


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(repeats: number, fn: () => void): number {
  fn(); // warm-up: first-use allocations and wasm tier-up
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

function sgemm(n: number, repeats: number): number {
  const a = rg.randn([n, n]);
  const b = rg.randn([n, n]);
  const seconds = time(repeats, () => rg.matmul(a, b).dispose());
  a.dispose();
  b.dispose();
  return (2 * n ** 3) / seconds / 1e9;
}

function resnet(modelName: string, batch: number, repeats: number) {
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
  const before = rg.memory().bytesInUse;
  rg.getBackend().resetPeak();
  const trainSeconds = time(repeats, step);
  const peakStepBytes = rg.memory().peakBytes - before;
  model.eval();
  const inferSeconds = time(repeats, () => rg.noGrad(() => model.forward(x).dispose()));
  model.dispose();
  x.dispose();
  return {
    model: modelName, batch,
    trainImagesPerSec: batch / trainSeconds,
    inferImagesPerSec: batch / inferSeconds,
    peakStepMiB: peakStepBytes / 2 ** 20,
  };
}

export async function runBench(args: readonly string[]) {
  const arg = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const repeats = Number(arg("repeats", "5"));
  const model = arg("model", "resnet20");
  const batch = Number(arg("batch", model === "resnet18" ? "32" : "64"));
  const result = {
    backend: rg.getBackend().name,
    threads: 1,
    sgemmGflops: { "256": sgemm(256, 20), "1024": sgemm(1024, repeats) },
    resnet: resnet(model, batch, repeats),
  };
  console.error(
    `sgemm 256³ ${result.sgemmGflops["256"].toFixed(1)} GFLOP/s, 1024³ ${result.sgemmGflops["1024"].toFixed(1)} GFLOP/s\n` +
    `${model} batch ${batch}: train ${result.resnet.trainImagesPerSec.toFixed(1)} img/s, ` +
    `inference ${result.resnet.inferImagesPerSec.toFixed(1)} img/s, peak step memory ${result.resnet.peakStepMiB.toFixed(1)} MiB`,
  );
  return result;
}
