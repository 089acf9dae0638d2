/**
 * Every optimiser resumes bit for bit: a training run interrupted mid-epoch and resumed from
 * its checkpoint ends with the weights, optimiser state (EMA included) and metrics of the
 * uninterrupted run, for SGD, Adam, AdamW, LARS, LAMB and scale-amended SGD, with clipping,
 * AGC, parameter groups and the EMA among them. Then the CLI: the optimiser flags in --help
 * and their checks, and a real `retrograd train --optimizer adamw --ema --log-rates` process
 * stopped by SIGINT and continued with --resume, which ends with the bytes of an
 * uninterrupted run (model, EMA weights, every metric record including rates and EMA
 * evaluations; Node pass only, as it spawns the CLI).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { parseFlags, UsageError } from "../cli/flags.ts";
import { TRAIN_FLAGS } from "../cli/train.ts";
import { optimizerSettingsFrom } from "../cli/optimizer_flags.ts";

function smallNet(): rg.nn.Module {
  return new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 6, 3, { padding: 1 }), new rg.nn.BatchNorm2d(6), new rg.nn.ReLU(), new rg.nn.MaxPool2d(2),
    new rg.nn.Conv2d(6, 4, 3, { padding: 1 }), new rg.nn.ReLU(),
    new rg.nn.Flatten(), new rg.nn.Dropout(0.2), new rg.nn.Linear(4 * 8 * 8, 4),
  );
}

const data = rg.data.synthetic({ n: 160, channels: 1, height: 16, width: 16, classes: 4, seed: 9 });
const testData = rg.data.synthetic({ n: 64, channels: 1, height: 16, width: 16, classes: 4, seed: 10 });
const base: rg.train.TrainConfig = {
  epochs: 2, steps: 0, batchSize: 32, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  schedule: "cosine", warmup: 0.5, powerGrad: 1, labelSmoothing: 0, seed: 5, shuffle: true, augment: "standard",
  mean: [0.5], std: [0.25], evalBatchSize: 50,
};

const SETTINGS: [number, rg.optim.OptimizerSettings][] = [
  [0.05, { name: "sgd", clipGrad: 0.5 }],
  [0.01, { name: "adam", agc: 0.05 }],
  [0.01, { name: "adamw", noDecayNormBias: true, ema: 0.9 }],
  [1, { name: "lars", trustCoef: 0.02 }],
  [0.01, { name: "lamb", betas: [0.8, 0.99] }],
  [0.05, { name: "scale-amended", ema: 0.8, clipGrad: 1 }],
];

function snapshot(trainer: rg.train.Trainer) {
  const tensors = (m: Map<string, rg.Tensor>) => [...m].map(([k, t]) => [k, [...t.dataSync()]]);
  return {
    weights: tensors(trainer.model.stateDict()),
    optimizer: tensors(trainer.optimizer.stateDict()),
    history: trainer.history.map(({ epoch, step, lr, trainLoss, trainAccuracy, testLoss, testAccuracy }) => ({ epoch, step, lr, trainLoss, trainAccuracy, testLoss, testAccuracy })),
  };
}

for (const [lr, optimizer] of SETTINGS) {
  test(`${optimizer.name} ${JSON.stringify(optimizer)}: resuming mid-epoch ends bit for bit as the uninterrupted run`, async () => {
    const config = { ...base, lr, optimizer };
    rg.manualSeed(config.seed);
    const straight = new rg.train.Trainer(smallNet(), data, testData, config);
    await straight.run();
    const expected = snapshot(straight);
    assert.ok(expected.optimizer.length > 0, "the optimiser has state to resume");
    if (optimizer.ema) assert.ok(expected.optimizer.some(([k]) => (k as string).startsWith("ema.")), "the EMA is in the checkpoint");

    rg.manualSeed(config.seed);
    const first = new rg.train.Trainer(smallNet(), data, testData, config);
    let bytes: Uint8Array | null = null;
    await first.run({ shouldStop: () => first.step === 7, onInterrupt: async (checkpoint) => void (bytes = await checkpoint()) });
    assert.ok(bytes, "interrupted at step 7 with a checkpoint");
    rg.manualSeed(999);
    const second = new rg.train.Trainer(smallNet(), data, testData, config);
    second.resume(bytes!, "checkpoint");
    await second.run();
    assert.equal(snapshot(second), expected);
  });
}

test("the optimiser flags: --help documents each, bad values are rejected by name", () => {
  const help = spawnSync("node_modules/.bin/deno", ["run", "-A", "cli/main.ts", "train", "--help"], { encoding: "utf8" }).stdout;
  for (const flag of ["optimizer", "betas", "eps", "trust-coef", "clip-grad", "agc", "agc-exclude", "no-decay-norm-bias", "ema", "log-rates"]) {
    assert.match(help, new RegExp(`^  --${flag}\\b`, "m"), `--help lists --${flag}`);
  }
  assert.match(help, /--optimizer <string> .*: sgd, adam, adamw, lars, lamb, scale-amended \(default: sgd\)/);
  const fails = (argv: string[], pattern: RegExp) =>
    assert.throws(() => parseFlags(argv, TRAIN_FLAGS), (e: Error) => e instanceof UsageError && pattern.test(e.message));
  fails(["--optimizer", "adamax"], /--optimizer: must be one of sgd, adam, adamw, lars, lamb, scale-amended/);
  fails(["--trust-coef", "0"], /--trust-coef: must be > 0/);
  fails(["--agc", "-1"], /--agc: must be ≥ 0/);
  assert.throws(() => optimizerSettingsFrom(parseFlags(["--agc-exclude", "skip_gain"], TRAIN_FLAGS)), (e: Error) => e instanceof UsageError && /--agc-exclude: only with --agc/.test(e.message));
  assert.equal(optimizerSettingsFrom(parseFlags(["--agc", "0.01", "--agc-exclude", "skip_gain"], TRAIN_FLAGS)).agcExclude, ["skip_gain"]);
  const parsed = parseFlags(["--optimizer", "lamb", "--betas", "0.8,0.99", "--no-decay-norm-bias", "--ema", "0.99"], TRAIN_FLAGS);
  assert.equal([parsed.optimizer, parsed.betas, parsed["no-decay-norm-bias"], parsed.ema], ["lamb", ["0.8", "0.99"], true, 0.99]);
});

const isDeno = "Deno" in globalThis;
const cliTest = isDeno ? test.skip : test;
if (isDeno) console.log("optimisers_resume.test: the CLI run goes from the Node pass (it spawns the CLI)");

cliTest("retrograd train --optimizer adamw --ema --log-rates: SIGINT, then --resume ends with the bytes of an uninterrupted run", async () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-optim-cli-"));
  const args = ["dist/cli.mjs", "train", "--model", "mlp", "--dataset", "synthetic", "--epochs", "2", "--batch-size", "32",
    "--optimizer", "adamw", "--lr", "0.003", "--weight-decay", "0.05", "--no-decay-norm-bias", "--clip-grad", "2", "--ema", "0.95",
    "--log-rates", "--save-every", "16", "--threads", "1", "--seed", "4", "--json"];
  const straight = spawnSync("node", [...args, "--out", join(dir, "straight")], { encoding: "utf8" });
  assert.is(straight.status, 0, straight.stderr);

  const out = join(dir, "interrupted");
  const child = spawn("node", [...args, "--out", out]);
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (!child.killed && /^epoch \d+\/\d+ step /m.test(stderr)) child.kill("SIGINT");
  });
  const [status] = await once(child, "close");
  assert.is(status, 130, `stopped by SIGINT:\n${stderr}`);
  const resumed = spawnSync("node", ["dist/cli.mjs", "train", "--resume", out, "--json"], { encoding: "utf8" });
  assert.is(resumed.status, 0, resumed.stderr);

  for (const file of ["model.safetensors", "model_ema.safetensors"]) {
    assert.equal(readFileSync(join(out, file)), readFileSync(join(dir, "straight", file)), `${file} after resuming`);
  }
  const records = (run: string) => readFileSync(join(run, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .map(({ seconds: _s, imagesPerSec: _i, ...rest }) => rest);
  const expected = records(join(dir, "straight"));
  assert.equal(records(out), expected);
  const rates = expected.filter((r) => r.type === "rates");
  assert.is(rates.length, 8, "a rates record beside each of the 8 step records");
  assert.equal(Object.keys(rates[0].layers), ["layers.0.weight", "layers.3.weight", "layers.6.weight", "layers.0.bias", "layers.3.bias", "layers.6.bias"],
    "every parameter by name, in group order (weights, then the no-decay group)");
  assert.is(rates[0].layers["layers.0.bias"].rate, rates[0].lr, "AdamW has no per-layer factor: each layer steps at lr");
  const ema = expected.filter((r) => r.type === "ema");
  assert.equal(ema.map((r) => [r.epoch, r.decay]), [[1, 0.95], [2, 0.95]]);
  assert.ok(ema.every((r) => Number.isFinite(r.testLoss) && r.testLoss !== expected.find((e) => e.type === "epoch" && e.epoch === r.epoch).testLoss),
    "the EMA evaluation is its own, not the trained weights'");
});

test.run();
