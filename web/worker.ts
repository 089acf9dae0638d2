/**
 * The demo's training worker: loads the data (Fashion-MNIST from the server, or the user's
 * IDX files), builds the model on the chosen backend, runs rg.train.Trainer, and reports
 * every step to the page. The CPU backend uses as many threads as the page asks for (the
 * worker can block in Atomics.wait, and the page is cross-origin isolated). Stop ends the run between steps; Resume continues the same Trainer
 * (its position and the random stream are intact, so the result equals an uninterrupted run).
 */
import * as rg from "../src/mod.ts";
import type { FromWorker, Predictions, ToWorker, TrainSettings } from "./protocol.ts";

const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const GRID_IMAGES = 32;

const scope = self as unknown as Worker & { crossOriginIsolated: boolean };
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);

let session: {
  trainer: rg.train.Trainer;
  model: rg.nn.Module;
  test: rg.data.Dataset;
  settings: TrainSettings;
  classNames: string[];
} | null = null;
let stopRequested = false;
let webgpu: rg.WebGPUBackend | null = null;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} (is the dataset installed? apt-get install dataset-fashion-mnist)`);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadData(settings: TrainSettings): Promise<{ train: rg.data.Dataset; test: rg.data.Dataset; classNames: string[] }> {
  if (settings.dataset === "fashion-mnist") {
    post({ type: "status", text: "Fetching Fashion-MNIST…" });
    const base = "/datasets/fashion-mnist/";
    const names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    const files = await Promise.all(names.map((n) => fetchBytes(base + n)));
    const idx = await Promise.all(files.map((b, i) => rg.data.readIdx(b, names[i])));
    return {
      train: rg.data.idxDataset(idx[0], idx[1], "fashion-mnist train", "fashion-mnist-train"),
      test: rg.data.idxDataset(idx[2], idx[3], "fashion-mnist t10k", "fashion-mnist-test"),
      classNames: FASHION,
    };
  }
  // Dropped IDX files, told apart by name: images/labels, and t10k/test versus train.
  const files = settings.files ?? [];
  const pick = (kind: RegExp, split: RegExp) => files.find((f) => kind.test(f.name) && split.test(f.name));
  const testSplit = /t10k|test/i;
  const trainSplit = /^(?!.*(t10k|test)).*/i;
  const parts = [pick(/images/i, trainSplit), pick(/labels/i, trainSplit), pick(/images/i, testSplit), pick(/labels/i, testSplit)];
  if (!parts[0] || !parts[1]) {
    throw new Error(`drop at least a training pair: *train*images* and *train*labels* IDX files (got ${files.map((f) => f.name).join(", ") || "none"})`);
  }
  const idx = await Promise.all(parts.map((f) => (f ? rg.data.readIdx(new Uint8Array(f.bytes), f.name) : null)));
  const train = rg.data.idxDataset(idx[0]!, idx[1]!, parts[0].name, "dropped-train");
  // Without a test pair, evaluate on the training images (said so in the status line).
  const test = idx[2] && idx[3] ? rg.data.idxDataset(idx[2], idx[3], parts[2]!.name, "dropped-test") : train;
  if (test === train) post({ type: "status", text: "No test files dropped: evaluating on training images." });
  return { train, test, classNames: Array.from({ length: train.classes }, (_, i) => String(i)) };
}

async function useBackend(name: TrainSettings["backend"]): Promise<void> {
  if (name === "webgpu") {
    if (!webgpu) throw new Error("WebGPU: no adapter in this browser");
    rg.setBackend("webgpu");
  } else {
    rg.setBackend("cpu");
  }
}

async function start(settings: TrainSettings): Promise<void> {
  session = null;
  const { train, test: fullTest, classNames } = await loadData(settings);
  const test = rg.data.subset(fullTest, Array.from({ length: Math.min(settings.evalImages, fullTest.n) }, (_, i) => i), fullTest.name);
  await useBackend(settings.backend);
  if (settings.backend === "cpu") await rg.setThreads(settings.threads);
  rg.manualSeed(settings.seed);
  const model = rg.models.createModel(settings.model, { inChannels: train.channels, numClasses: train.classes, imageSize: train.height });
  const trainer = new rg.train.Trainer(model, train, test, {
    epochs: 1, steps: settings.steps, batchSize: settings.batchSize, lr: settings.lr, momentum: 0.9, nesterov: true,
    weightDecay: 5e-4, schedule: "cosine", warmup: 0, powerGrad: settings.powerGrad, labelSmoothing: 0,
    seed: settings.seed, shuffle: true, augment: "none", mean: [0.286], std: [0.353], evalBatchSize: 250,
  });
  session = { trainer, model, test, settings, classNames };
  const parameters = model.parameters().reduce((n, p) => n + p.size, 0);
  post({
    type: "started", backend: settings.backend === "webgpu" ? `WebGPU (${webgpu!.adapterDescription})` : "CPU (WebAssembly SIMD)",
    threads: settings.backend === "webgpu" ? 1 : rg.getThreads(), parameters, trainImages: train.n, testImages: test.n,
  });
  await run();
}

async function run(): Promise<void> {
  const s = session!;
  stopRequested = false;
  const { interrupted } = await s.trainer.run({
    onStep: async (record) => {
      post({ type: "step", record, steps: s.settings.steps });
      await new Promise((r) => setTimeout(r)); // let "stop" messages in
    },
    onEpoch: (record) => post({ type: "epoch", record }),
    shouldStop: () => stopRequested,
  });
  const predictions = await predict();
  post({ type: interrupted ? "stopped" : "done", step: s.trainer.step, predictions }, [predictions.pixels.buffer]);
}

/** The model's labels for the first test images, for the page's grid. */
async function predict(): Promise<Predictions> {
  const { model, test, classNames } = session!;
  const n = Math.min(GRID_IMAGES, test.n);
  const size = test.channels * test.height * test.width;
  const values = new Float32Array(n * size);
  for (let i = 0; i < values.length; i++) values[i] = (test.images[i] / 255 - 0.286) / 0.353;
  model.eval();
  const logits = rg.noGrad(() => rg.tidy(() => model.forward(rg.tensor(values, [n, test.channels, test.height, test.width]))));
  const z = await logits.data();
  logits.dispose();
  model.train();
  const predicted = Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < test.classes; c++) if (z[i * test.classes + c] > z[i * test.classes + best]) best = c;
    return best;
  });
  const pixels = new Uint8Array(n * test.height * test.width);
  for (let i = 0; i < n; i++) pixels.set(test.images.subarray(i * size, i * size + test.height * test.width), i * test.height * test.width);
  return { pixels, n, height: test.height, width: test.width, labels: Array.from(test.labels.subarray(0, n)), predicted, classNames };
}

/** The state dict as safetensors; GPU tensors are read back first (there is no sync read on WebGPU). */
async function weights(): Promise<void> {
  const { model, settings } = session!;
  const state = new Map<string, rg.Tensor>();
  for (const [name, t] of model.stateDict()) {
    const copy = rg.tensor(await t.data(), [...t.shape], rg.getBackend("cpu"));
    copy.dtype = t.dtype;
    state.set(name, copy);
  }
  const bytes = rg.io.writeSafetensors(state, { framework: "retrograd", model: settings.model });
  for (const t of state.values()) t.dispose();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  post({ type: "weights", bytes, sha256, name: `retrograd-${settings.model}-step${session!.trainer.step}.safetensors` }, [bytes.buffer]);
}

function guard(task: () => Promise<void>): void {
  task().catch((e: unknown) => post({ type: "error", message: e instanceof Error ? e.message : String(e) }));
}

scope.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "train") guard(() => start(message.settings));
  else if (message.type === "stop") stopRequested = true;
  else if (message.type === "resume" && session) guard(run);
  else if (message.type === "download" && session) guard(weights);
};

// Ask for an adapter once; SwiftShader and other software adapters count (the user chooses).
guard(async () => {
  try {
    webgpu = await rg.createWebGPUBackend({ allowFallback: true });
    if (webgpu) rg.registerBackend(webgpu);
  } catch {
    webgpu = null;
  }
  // Threads need workers that may block (this is one) and shared memory (cross-origin isolation).
  const threads = await rg.setThreads();
  post({ type: "ready", webgpu: webgpu?.adapterDescription ?? null, isolated: scope.crossOriginIsolated, threads });
});
