/**
 * The CLI end to end on real data: a short Fashion-MNIST training under Node (dist/cli.mjs)
 * and under Deno (cli/main.ts) with the same seed must print the same numbers and write the
 * same weights; `eval` on the saved weights must agree with the run's own evaluation; the
 * output directory holds config.json, metrics.jsonl, checkpoint.safetensors and curves.svg.
 * A real process stopped with SIGINT (Ctrl-C) exits with status 130 after saving a
 * checkpoint of the step it reached, and `--resume` then ends with the very bytes of an
 * uninterrupted run. One step from `--init` weights matches PyTorch's step on the same
 * first batch (test/fixtures/cli_step.safetensors). It spawns both runtimes itself, so it
 * runs once, from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import * as rg from "../src/mod.ts";
import { assertClose, formulaInit, loadFixture, tolFor } from "./helpers.ts";

const isDeno = "Deno" in globalThis;
const fashionDir = "/usr/share/datasets/fashion-mnist";
const hasData = existsSync(fashionDir);
const skipReason = isDeno
  ? "runs from the Node pass (it spawns both runtimes itself)"
  : !hasData ? "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)" : "";
if (skipReason) console.log(`cli.test: end-to-end training skipped: ${skipReason}`);
const realTest = skipReason ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-"));
const args = ["train", "--steps", "40", "--batch-size", "64", "--seed", "3", "--json", "--save-every", "10"];

type Runtime = "node" | "deno";

function command(runtime: Runtime, argv: string[]): [string, string[]] {
  return runtime === "node" ? ["node", ["dist/cli.mjs", ...argv]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv]];
}

/** Run the CLI to completion; it must succeed. Returns its --json summary. */
function run(runtime: Runtime, argv: string[]) {
  const r = spawnSync(...command(runtime, argv), { encoding: "utf8", timeout: 600_000 });
  assert.is(r.status, 0, `${runtime} ${argv.join(" ")} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** metrics.jsonl without the timings: [type, step, loss] per record. */
const metrics = (runDir: string) => readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n")
  .map((l) => JSON.parse(l)).map((r) => [r.type, r.step, r.loss ?? r.trainLoss]);

realTest("a short real training gives the same numbers under Node and Deno, and learns", () => {
  const node = run("node", [...args, "--out", join(dir, "node")]);
  const deno = run("deno", [...args, "--out", join(dir, "deno")]);
  assert.is(node.steps, 40);
  assert.ok(node.testAccuracy > 0.5, `test accuracy after 40 steps: ${node.testAccuracy}`);
  assert.is(deno.testAccuracy, node.testAccuracy);
  assert.is(deno.testLoss, node.testLoss);
  assert.equal(metrics(join(dir, "deno")), metrics(join(dir, "node")));
  assert.equal(readFileSync(join(dir, "deno", "model.safetensors")), readFileSync(join(dir, "node", "model.safetensors")));
  for (const file of ["config.json", "metrics.jsonl", "checkpoint.safetensors", "curves.svg", "model.safetensors"]) {
    assert.ok(existsSync(join(dir, "node", file)), `${file} written`);
  }
  const config = JSON.parse(readFileSync(join(dir, "node", "config.json"), "utf8"));
  assert.is(config.train.seed, 3);
  assert.match(config.runtime, /^node /);

  const evaluated = run("node", ["eval", "--weights", join(dir, "node", "model.safetensors"), "--json"]);
  assert.is(evaluated.testAccuracy, node.testAccuracy);
});

// An MLP keeps the three runs below short; 2000 steps of batch 32 cross the first epoch's end
// (1875 batches) and leave ample time for the signal to land mid-run. Two threads, so the
// interrupted process also has workers to stop.
const interruptSteps = 2000;
const interruptArgs = ["train", "--model", "mlp", "--steps", String(interruptSteps), "--batch-size", "32", "--threads", "2",
  "--seed", "7", "--save-every", "100", "--json"];

/** Start a run and send it SIGINT once it reports its first step; resolves when it has exited. */
async function interruptRun(runtime: Runtime, out: string) {
  const child = spawn(...command(runtime, [...interruptArgs, "--out", out]));
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => {
    stderr += d;
    // --json sends progress to stderr: "epoch 1/2 step 1/1875 ..." comes after the first step.
    if (!child.killed && /^epoch \d+\/\d+ step /m.test(stderr)) child.kill("SIGINT");
  });
  const [status, signal] = await once(child, "close");
  return { status, signal, stderr, summary: JSON.parse(stdout.trim().split("\n").pop() ?? "null") };
}

realTest("Ctrl-C stops a real process with a checkpoint of its step, and --resume ends as an uninterrupted run", async () => {
  const straight = join(dir, "straight");
  assert.is(run("node", [...interruptArgs, "--out", straight]).steps, interruptSteps);
  for (const runtime of ["node", "deno"] as const) {
    const out = join(dir, `interrupted-${runtime}`);
    const stopped = await interruptRun(runtime, out);
    assert.is(stopped.signal, null, `${runtime}: exits by itself, not killed by the signal:\n${stopped.stderr}`);
    assert.is(stopped.status, 130, `${runtime}: exit status of an interrupted run:\n${stopped.stderr}`);
    assert.is(stopped.summary.interrupted, true);
    const step = stopped.summary.steps as number;
    assert.ok(step >= 1 && step < interruptSteps, `${runtime}: stopped mid-run, at step ${step}`);
    assert.match(stopped.stderr, `checkpoint saved to ${join(out, "checkpoint.safetensors")}`);
    assert.not.ok(existsSync(join(out, "model.safetensors")), `${runtime}: no final weights from an interrupted run`);

    const bytes = new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")));
    const position = JSON.parse(rg.io.readSafetensorsMetadata(bytes).position);
    assert.is(position.step, step, `${runtime}: the checkpoint records the step the run stopped at`);
    const model = rg.models.createModel("mlp", { inChannels: 1, numClasses: 10, imageSize: 28 });
    const saved = rg.io.readSafetensors(bytes);
    model.loadStateDict(new Map([...saved].filter(([k]) => k.startsWith("model.")).map(([k, t]) => [k.slice("model.".length), t])));
    assert.ok([...saved.keys()].some((k) => k.startsWith("optim.")), `${runtime}: the checkpoint holds momentum buffers`);

    const resumed = run(runtime, ["train", "--resume", out, "--json"]);
    assert.is(resumed.steps, interruptSteps);
    assert.equal(readFileSync(join(out, "model.safetensors")), readFileSync(join(straight, "model.safetensors")),
      `${runtime}: weights after resuming from step ${step}`);
    assert.equal(metrics(out), metrics(straight), `${runtime}: metrics after resuming from step ${step}`);
  }
});

/**
 * The first n examples of a gzipped IDX file, as a plain IDX file: a --data directory with
 * the real first batch, so the run's end-of-run evaluation does not go through 10,000 images.
 */
function idxHead(path: string, n: number): Uint8Array {
  const bytes = gunzipSync(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ndim = bytes[3];
  let itemBytes = 1;
  for (let d = 1; d < ndim; d++) itemBytes *= view.getUint32(4 + 4 * d);
  const head = bytes.slice(0, 4 + 4 * ndim + n * itemBytes);
  new DataView(head.buffer).setUint32(4, n);
  return head;
}

realTest("one step from --init weights matches PyTorch: every tensor of model.safetensors", () => {
  const fx = loadFixture("cli_step.safetensors");
  const o = fx.meta("cli") as { batch_size: number; lr: number; momentum: number; nesterov: boolean; weight_decay: number; mean: number[]; std: number[] };
  const data = join(dir, "fashion-head");
  mkdirSync(data);
  const images = idxHead(join(fashionDir, "train-images-idx3-ubyte.gz"), o.batch_size);
  const labels = idxHead(join(fashionDir, "train-labels-idx1-ubyte.gz"), o.batch_size);
  assert.equal([...labels.subarray(8)], [...fx.get("labels").dataSync()], "the batch PyTorch trained on");
  // The test split only feeds the evaluation after the step: the same few images do.
  for (const split of ["train", "t10k"]) {
    writeFileSync(join(data, `${split}-images-idx3-ubyte`), images);
    writeFileSync(join(data, `${split}-labels-idx1-ubyte`), labels);
  }

  const model = rg.models.resnet20({ numClasses: 10, inChannels: 1 });
  formulaInit(model);
  const init = new Map([...model.stateDict()].map(([k, t]) => [k, t.dataSync().slice()]));
  const initPath = join(dir, "init.safetensors");
  writeFileSync(initPath, rg.io.writeSafetensors(model.stateDict()));
  const out = join(dir, "onestep");
  const summary = run("node", ["train", "--init", initPath, "--data", data, "--steps", "1", "--batch-size", String(o.batch_size),
    "--no-shuffle", "--augment", "none", "--schedule", "constant", "--warmup", "0", "--lr", String(o.lr), "--momentum", String(o.momentum),
    o.nesterov ? "--nesterov" : "--no-nesterov", "--weight-decay", String(o.weight_decay), "--threads", "1", "--json", "--out", out]);
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.equal([config.train.mean, config.train.std], [o.mean, o.std], "the normalisation PyTorch used");
  assertClose([summary.history[0].trainLoss], fx.get("loss"), "loss of the step", { rtol: 1e-5, atol: 0 });

  const saved = rg.io.readSafetensors(new Uint8Array(readFileSync(join(out, "model.safetensors"))));
  assert.equal([...saved.keys()].sort(), fx.keys().filter((k) => k.startsWith("after.")).map((k) => k.slice(6)).sort());
  for (const [name, t] of saved) {
    const expected = fx.get(`after.${name}`).dataSync();
    if (name.endsWith("num_batches_tracked")) {
      assert.equal([...t.dataSync()], [...expected], name);
      continue;
    }
    // Compare the step itself (after − init): against the weights alone a wrong update would
    // hide below float32 noise. Float32 through 20 layers: 1e-3 relative, floored by the RMS
    // (the fixture's batch keeps every pre-activation clear of a ReLU's kink, where float32
    // rounding could flip a unit: gen_fixtures.py, RELU_MARGIN).
    const start = init.get(name)!;
    const theirs = Float64Array.from(expected, (v, i) => v - start[i]);
    assertClose(Float64Array.from(t.dataSync(), (v, i) => v - start[i]), theirs, `step of ${name}`, tolFor(theirs));
  }
});

// Synthetic data: needs no dataset, so only the Deno pass skips it (it spawns Node itself).
(isDeno ? test.skip : test)("--width: train writes the narrow model, resume keeps its width, eval rebuilds it with --width", () => {
  const out = join(dir, "narrow");
  const flags = ["--dataset", "synthetic", "--model", "mlp", "--batch-size", "64", "--threads", "1", "--json"];
  const stopped = run("node", ["train", ...flags, "--width", "0.25", "--epochs", "2", "--steps", "32", "--out", out]);
  assert.is(stopped.steps, 32);
  const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
  assert.is(config.width, 0.25);
  const saved = rg.io.readSafetensors(new Uint8Array(readFileSync(join(out, "model.safetensors"))));
  assert.equal(["layers.0.weight", "layers.3.weight", "layers.6.weight"].map((k) => saved.get(k)!.shape), [[64, 784], [32, 64], [10, 32]]);
  // A resumed run rebuilds its model from config.json: a width-1 model would not load the checkpoint.
  assert.is(run("node", ["train", "--resume", out, "--json"]).steps, 32);
  const evaluated = run("node", ["eval", "--model", "mlp", "--width", "0.25", "--dataset", "synthetic", "--weights", join(out, "model.safetensors"), "--json"]);
  assert.is(evaluated.testAccuracy, stopped.testAccuracy);
});

realTest("bad CLI input exits with status 2 and a message naming the flag", () => {
  const r = spawnSync("node", ["dist/cli.mjs", "train", "--lr", "-1"], { encoding: "utf8" });
  assert.is(r.status, 2);
  assert.match(r.stderr, /--lr: must be > 0/);
});

test.run();
