/**
 * The commands that rebuild a trained model from what a run left (cli/saved_model.ts), on a
 * tiny ZCA-whitened run: `eval RUN_DIR` and `analyze RUN_DIR` rebuild it from its config.json
 * (no flags repeated) and `eval` gives the run's own test figures; `eval --weights --norm zca`
 * does too; weights of the other normalisation (ZCA weights for a BatchNorm model, BatchNorm
 * weights for a ZCA run) are a StateDictError (exit 1) naming the key and the way to rebuild the
 * model that fits, in eval, train --init and export. It spawns the CLI, so it runs from the
 * Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";

const cliTest = "Deno" in globalThis ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-rebuild-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...argv: string[]) => spawnSync("node", ["dist/cli.mjs", ...argv], { encoding: "utf8", timeout: 300_000 });
const zcaRun = join(dir, "zca-run");
const small = ["--model", "resnet20", "--width", "0.25", "--dataset", "synthetic", "--threads", "1"];
let trained: { testLoss: number; testAccuracy: number } | null = null;

/** Two steps of ResNet-20 at width 0.25 with ZCA whitening (analytic backward), trained once. */
function zcaRunSummary() {
  if (!trained) {
    const r = cli("train", ...small, "--norm", "zca", "--zca-backward", "analytic", "--steps", "2", "--batch-size", "16", "--out", zcaRun, "--json");
    assert.is(r.status, 0, r.stderr);
    trained = JSON.parse(r.stdout);
  }
  return trained!;
}

function fails(argv: string[], patterns: RegExp[]) {
  const r = cli(...argv);
  assert.is(r.status, 1, `${argv.join(" ")}: exit status (stderr: ${r.stderr.slice(0, 300)})`);
  for (const pattern of patterns) assert.match(r.stderr, pattern);
  assert.not.match(r.stderr, /\n\s+at /, "one line, no stack trace");
}

cliTest("eval RUN_DIR rebuilds a ZCA run from its config.json and gives the run's own test loss and accuracy; so does --weights with --norm zca", () => {
  const run = zcaRunSummary();
  for (const argv of [[zcaRun], ["--weights", join(zcaRun, "model.safetensors"), "--model", "resnet20", "--width", "0.25", "--dataset", "synthetic", "--norm", "zca"]]) {
    const r = cli("eval", ...argv, "--json");
    assert.is(r.status, 0, r.stderr);
    const evaluated = JSON.parse(r.stdout);
    assert.is(evaluated.testLoss, run.testLoss, `eval ${argv.join(" ")}: test loss`);
    assert.is(evaluated.testAccuracy, run.testAccuracy, `eval ${argv.join(" ")}: test accuracy`);
  }
});

cliTest("analyze RUN_DIR rebuilds a ZCA run from its config.json", () => {
  zcaRunSummary();
  const r = cli("analyze", zcaRun, "--probe", "activations", "--batches", "1", "--batch-size", "16", "--threads", "1");
  assert.is(r.status, 0, r.stderr);
  const record = JSON.parse(r.stdout.trim().split("\n")[0]);
  assert.is(record.probe, "activations");
  assert.ok(record.layers.length > 0, "the probe measured layers");
});

cliTest("weights of the other normalisation are a StateDictError naming the key and the way: eval, train --init, export", () => {
  zcaRunSummary();
  const zcaWeights = join(zcaRun, "model.safetensors");
  const batchNormWeights = join(dir, "batchnorm.safetensors");
  writeFileSync(batchNormWeights, rg.io.writeSafetensors(rg.models.createModel("resnet20", { inChannels: 1, numClasses: 10, imageSize: 28, widthMultiplier: 0.25 }).stateDict()));
  fails(["eval", "--weights", zcaWeights, "--width", "0.25", "--dataset", "synthetic"],
    [/holds ZCA whitening statistics \(bn1\.running_cov\) where this model has BatchNorm: evaluate them with --norm zca, or give the directory of the run/, /missing keys: bn1\.running_var/]);
  // A mismatched checkpoint beside a ZCA run's config.json.
  fails(["eval", zcaRun, "--weights", batchNormWeights],
    [/holds BatchNorm statistics \(bn1\.running_var\) where this model has ZCA whitening: evaluate them with --norm bn/, /missing keys: bn1\.running_cov/]);
  fails(["train", ...small, "--steps", "1", "--init", zcaWeights, "--out", join(dir, "init")], [/holds ZCA whitening statistics \(bn1\.running_cov\).*train with --norm zca/]);
  fails(["export", "--onnx", join(dir, "model.onnx"), "--weights", zcaWeights, "--dataset", "synthetic"], [/bn1\.running_cov.*export writes BatchNorm models only/]);
});

test.run();
