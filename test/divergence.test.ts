/**
 * Divergence is noticed: the trainer reads each step's loss and global gradient norm before
 * the optimiser steps. A NaN injected at a chosen step stops training with a DivergenceError
 * naming the step, the epoch and the last finite loss, and the weights are those after the
 * step before; under onNonFinite "skip" the step's update is dropped and counted, so the
 * weights equal those of a run that never took it. Non-finite numbers survive a metric
 * record's round trip through JSON as the strings "NaN" / "Infinity" / "-Infinity".
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";

const data = rg.data.synthetic({ n: 96, channels: 1, height: 8, width: 8, classes: 3, seed: 4 });
const testData = rg.data.synthetic({ n: 30, channels: 1, height: 8, width: 8, classes: 3, seed: 4, split: "test" });
const config: rg.train.TrainConfig = {
  epochs: 2, steps: 0, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  schedule: "constant", warmup: 0, powerGrad: 1, labelSmoothing: 0, seed: 2, shuffle: true, augment: "none",
  mean: [0.5], std: [0.25], evalBatchSize: 30,
};

/** A small MLP whose output is NaN at training step `poisoned` (1-based; 0: never). */
function model(poisoned: number): rg.nn.Module {
  rg.manualSeed(config.seed);
  const net = new rg.nn.Sequential(new rg.nn.Flatten(), new rg.nn.Linear(64, 16), new rg.nn.ReLU(), new rg.nn.Linear(16, 3));
  let step = 0;
  net.registerForwardHook((m, _input, output) => {
    if (m.training && ++step === poisoned) return rg.scale(output, NaN);
  });
  return net;
}

const weights = (m: rg.nn.Module) => [...m.stateDict().values()].flatMap((t) => [...t.dataSync()]);

test("a NaN loss at step 9 stops training with a DivergenceError naming step, epoch and the last finite loss; the step is not applied", async () => {
  const before = new rg.train.Trainer(model(0), data, testData, { ...config, steps: 8 });
  const losses: number[] = [];
  await before.run({ onStep: (r) => void losses.push(r.loss) });

  const trainer = new rg.train.Trainer(model(9), data, testData, config);
  let error: unknown;
  let epochs = 0;
  try {
    await trainer.run({ onEpoch: () => void epochs++ });
  } catch (e) {
    error = e;
  }
  assert.instance(error, rg.DivergenceError);
  const e = error as rg.DivergenceError;
  assert.equal([e.step, e.epoch, e.lastFiniteLoss], [9, 2, losses[7]]);
  assert.match(e.message, `training diverged at step 9 (epoch 2): loss NaN`);
  assert.match(e.message, `the last finite loss was ${losses[7]} (step 8)`);
  assert.is(epochs, 1, "the first epoch (6 steps) ended normally");
  assert.equal(weights(trainer.model), weights(before.model), "the weights after step 8, not a NaN in sight");
});

test("onNonFinite \"skip\": the poisoned step's update is dropped and counted; the weights equal a run without that step", async () => {
  const skipping = new rg.train.Trainer(model(3), data, testData, { ...config, onNonFinite: "skip" });
  const records: rg.train.StepRecord[] = [];
  const result = await skipping.run({ onStep: (r) => void records.push(r) });
  assert.equal(result.history.map((r) => r.skippedSteps), [1, 0]);
  assert.equal(records.filter((r) => r.skipped).map((r) => r.step), [3]);
  assert.ok(Number.isNaN(records[2].loss));
  assert.ok(records.every((r) => r.skipped || (Number.isFinite(r.gradNorm) && r.gradNorm > 0)), "gradient norms are recorded");
  assert.ok(Number.isFinite(result.history[0].trainLoss), "the skipped step stays out of the epoch's loss");

  // The same run, with step 3's update never taken: a hook that zeroes nothing but drops it.
  const reference = new rg.train.Trainer(model(0), data, testData, config);
  const opt = reference.optimizer;
  const step = opt.step.bind(opt);
  let calls = 0;
  opt.step = () => void (++calls !== 3 && step());
  await reference.run();
  assert.equal(weights(skipping.model), weights(reference.model));
});

test("metric records keep NaN and ±Infinity as strings in valid JSON, and read them back as numbers", () => {
  const record = { type: "epoch", trainLoss: NaN, testLoss: Infinity, lr: -Infinity, step: 3, testAccuracy: 0.5 };
  const text = rg.io.stringifyRecord(record);
  assert.is(text, '{"type":"epoch","trainLoss":"NaN","testLoss":"Infinity","lr":"-Infinity","step":3,"testAccuracy":0.5}');
  assert.equal(JSON.parse(text).trainLoss, "NaN", "plain JSON");
  assert.equal(rg.io.parseRecord(text), record);
});

test.run();
