/**
 * The training loop and the CLI's promises: a run interrupted and resumed from its
 * checkpoint ends with exactly the weights and metrics of an uninterrupted run; flags are
 * checked with helpful messages; a checkpoint write killed midway leaves the previous
 * checkpoint intact.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { parseFlags, UsageError } from "../cli/flags.ts";
import { TRAIN_FLAGS } from "../cli/train.ts";
import { writeAtomic } from "../cli/files.ts";
import { assertClose } from "./helpers.ts";

function smallNet(): rg.nn.Module {
  return new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 6, 3, { padding: 1 }), new rg.nn.BatchNorm2d(6), new rg.nn.ReLU(), new rg.nn.MaxPool2d(2),
    new rg.nn.Flatten(), new rg.nn.Dropout(0.2), new rg.nn.Linear(6 * 8 * 8, 4),
  );
}

const data = rg.data.synthetic({ n: 160, channels: 1, height: 16, width: 16, classes: 4, seed: 9 });
const testData = rg.data.synthetic({ n: 64, channels: 1, height: 16, width: 16, classes: 4, seed: 10 });
const config: rg.train.TrainConfig = {
  epochs: 3, steps: 0, batchSize: 32, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  schedule: "cosine", warmup: 0.5, powerGrad: 0.5, labelSmoothing: 0.1, seed: 5, shuffle: true, augment: "standard",
  mean: [0.5], std: [0.25], evalBatchSize: 50,
};

function weights(model: rg.nn.Module): number[] {
  return [...model.stateDict().values()].flatMap((t) => [...t.dataSync()]);
}

const metricsOnly = (h: readonly rg.train.EpochRecord[]) =>
  h.map(({ epoch, step, lr, trainLoss, trainAccuracy, testLoss, testAccuracy, measures }) =>
    ({ epoch, step, lr, trainLoss, trainAccuracy, testLoss, testAccuracy, measures }));

/** Per-epoch measures from the test logits: they must land in the records and survive a resume. */
function logitMeasures(): rg.train.TrainCallbacks {
  let sums = new rg.analysis.LogitStatsSum();
  return {
    onTestLogits: (z, classes) => sums.add(z, classes),
    measureEpoch: () => {
      const { norm, samples } = sums.result();
      sums = new rg.analysis.LogitStatsSum();
      return { logitNorm: norm, samples };
    },
  };
}

type OptimizerFactory = ConstructorParameters<typeof rg.train.Trainer>[4];

async function interruptedAt(stopStep: number, cfg = config, optimizer?: OptimizerFactory) {
  rg.manualSeed(cfg.seed);
  const first = new rg.train.Trainer(smallNet(), data, testData, cfg, optimizer);
  let bytes: Uint8Array | null = null;
  const r1 = await first.run({
    ...logitMeasures(),
    shouldStop: () => first.step === stopStep,
    onInterrupt: async (checkpoint) => void (bytes = await checkpoint()),
  });
  assert.ok(r1.interrupted && bytes, "the first run stops and checkpoints");
  rg.manualSeed(12345); // a fresh process: whatever state, resume must restore it
  const second = new rg.train.Trainer(smallNet(), data, testData, cfg, optimizer);
  second.resume(bytes!, "checkpoint");
  const r2 = await second.run(logitMeasures());
  return { model: second.model, history: r2.history };
}

test("resume after an interruption equals the uninterrupted run, bit for bit, per-epoch measures included", async () => {
  rg.manualSeed(config.seed);
  const straight = new rg.train.Trainer(smallNet(), data, testData, config);
  const full = await straight.run(logitMeasures());
  assert.is(full.history[2].measures!.samples, testData.n, "each epoch's measures see the whole test set once");
  const expectedWeights = weights(straight.model);
  for (const stopStep of [7, 5, 10]) { // mid-epoch, at an epoch boundary, mid-epoch 3
    const resumed = await interruptedAt(stopStep);
    assert.equal(weights(resumed.model), expectedWeights, `weights after resuming at step ${stopStep}`);
    assert.equal(metricsOnly(resumed.history), metricsOnly(full.history), `metrics after resuming at step ${stopStep}`);
  }
  assert.ok(full.history[2].trainLoss < full.history[0].trainLoss, "the run learns");
});

test("dithered backprop in training: per-layer sparsity in every step record and each epoch's measures, and resume equals the uninterrupted run", async () => {
  const dithered: rg.train.TrainConfig = { ...config, epochs: 2, dither: { rule: "maxabs", factor: 0.5 } };
  rg.manualSeed(dithered.seed);
  const straight = new rg.train.Trainer(smallNet(), data, testData, dithered);
  const steps: rg.train.StepRecord[] = [];
  const full = await straight.run({ ...logitMeasures(), onStep: (r) => void steps.push(r) });
  for (const r of steps) {
    assert.equal(Object.keys(r.ditherSparsity!), ["0", "6"], `step ${r.step}: the Conv2d and the Linear`);
    for (const s of Object.values(r.ditherSparsity!)) assert.ok(s > 0 && s < 1, `step ${r.step}: sparsity ${s}`);
  }
  const epoch1 = steps.filter((r) => r.epoch === 1);
  const meanConv = epoch1.reduce((t, r) => t + r.ditherSparsity!["0"], 0) / epoch1.length;
  assertClose([full.history[0].measures!["dither.0"]], [meanConv], "epoch 1's conv sparsity is the mean of its steps'");
  assert.ok(full.history[0].measures!["dither.mean"] > 0 && full.history[0].measures!.samples === testData.n);
  const resumed = await interruptedAt(7, dithered);
  assert.equal(weights(resumed.model), weights(straight.model), "weights after resuming at step 7");
  assert.equal(metricsOnly(resumed.history), metricsOnly(full.history), "metrics and sparsity after resuming at step 7");
});

test("pipelined backprop (PipelinedSGD with SC and LWP) in the trainer: evaluated on the latest weights, and resume equals the uninterrupted run", async () => {
  const cfg: rg.train.TrainConfig = { ...config, epochs: 2 };
  let optimizer: rg.optim.PipelinedSGD | null = null;
  const pipelined: OptimizerFactory = (m, c) =>
    (optimizer = new rg.optim.PipelinedSGD(rg.optim.layerStages(m), { lr: c.lr, momentum: c.momentum, spikeCompensation: true, linearWeightPrediction: true }));
  rg.manualSeed(cfg.seed);
  const straight = new rg.train.Trainer(smallNet(), data, testData, cfg, pipelined);
  assert.equal(optimizer!.paramGroups.map((g) => g.options.delay), [4, 2, 0], "conv, BatchNorm, linear: delays 2·(S − 1 − s)");
  const full = await straight.run(logitMeasures());
  const forwardWeights = weights(straight.model);
  const restore = optimizer!.evaluationWeights();
  const latestWeights = weights(straight.model);
  const evaluated = await rg.train.evaluate(straight.model, testData, cfg);
  restore();
  assert.not.equal(latestWeights, forwardWeights, "after the run the model holds the stale forward weights, not the latest");
  assert.is(evaluated.accuracy, full.history[1].testAccuracy, "the epoch's test accuracy is the latest weights'");
  assert.equal(weights(straight.model), forwardWeights, "evaluation left the forward weights in place");
  const resumed = await interruptedAt(7, cfg, pipelined);
  assert.equal(weights(resumed.model), forwardWeights, "weights after resuming at step 7");
  assert.equal(metricsOnly(resumed.history), metricsOnly(full.history), "metrics after resuming at step 7");
});

test("train flags: bad values and unknown names are rejected with helpful messages", () => {
  const fails = (argv: string[], pattern: RegExp) =>
    assert.throws(() => parseFlags(argv, TRAIN_FLAGS), (e: Error) => e instanceof UsageError && pattern.test(e.message));
  fails(["--lr", "-1"], /--lr: must be > 0, got "-1"/);
  fails(["--model", "resnet99"], /--model: must be one of resnet20, .*got "resnet99"/);
  fails(["--epoch", "3"], /unknown flag --epoch \(did you mean --epochs\?\)/);
  fails(["--batch-size", "1.5"], /--batch-size: must be an integer/);
  fails(["--epochs"], /--epochs needs a value/);
  fails(["--width", "0"], /--width: must be > 0, got "0"/);
  const ok = parseFlags(["--no-shuffle", "--powergrad=0.25", "--augment", "none"], TRAIN_FLAGS);
  assert.is(ok.shuffle, false);
  assert.is(ok.powergrad, 0.25);
  assert.is(ok.model, "resnet20");
  assert.is(ok.nesterov, true);
  const listFlag = { name: "seeds", type: "list", default: "0,1,2", help: "" } as const;
  assert.equal(parseFlags([], [listFlag]).seeds, ["0", "1", "2"], "a list flag's default is read as a list");
  assert.equal(parseFlags(["--seeds", "4,5"], [listFlag]).seeds, ["4", "5"]);
});

test("a Trainer and evaluate refuse an empty test set: no test images, not NaN%", async () => {
  const empty = rg.data.subset(testData, [], "empty-test");
  assert.throws(() => new rg.train.Trainer(smallNet(), data, empty, config), (e: Error) => e instanceof rg.ValueError && /no test images \(empty-test is empty\)/.test(e.message));
  let error: unknown;
  try {
    await rg.train.evaluate(smallNet(), empty, config);
  } catch (e) {
    error = e;
  }
  assert.instance(error, rg.ValueError);
  assert.match((error as Error).message, "evaluate: no test images");
});

test("a checkpoint write killed midway leaves the previous checkpoint intact", async () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-atomic-"));
  const path = join(dir, "checkpoint.safetensors");
  const model = smallNet();
  const previous = rg.io.writeSafetensors(model.stateDict());
  await writeAtomic(path, previous);
  const child = spawn("node_modules/.bin/deno", ["run", "-A", "test/support/atomic_writer.ts", path, "400"]);
  await new Promise<void>((resolve) => child.stdout.on("data", (d) => String(d).includes("writing") && resolve()));
  await new Promise((r) => setTimeout(r, 150)); // let it get well into the write
  child.kill("SIGKILL");
  await new Promise((r) => child.on("exit", r));
  const after = new Uint8Array(readFileSync(path));
  assert.equal(after.length, previous.length, "the previous checkpoint is still there, whole");
  const restored = smallNet();
  restored.loadStateDict(rg.io.readSafetensors(after, path));
  assert.equal(weights(restored), weights(model));
  assert.ok(existsSync(path));
});

test.run();
