/**
 * The CLI's answers when things go wrong, on real processes under Node (dist/cli.mjs) and
 * Deno (cli/main.ts): a diverging run exits 1 naming the step, keeps its last checkpoint
 * and writes no model; non-finite metrics are written as "NaN"/"Infinity" and read back by
 * `plot`; bad values and file-system problems are one line naming the flag and the path,
 * never a stack trace. It spawns both runtimes itself, so it runs once, from the Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { readRun } from "../cli/plot.ts";

const isDeno = "Deno" in globalThis;
if (isDeno) console.log("cli_failures.test: runs from the Node pass (it spawns both runtimes itself)");
const cliTest = isDeno ? test.skip : test;
const RUNTIMES = ["node", "deno"] as const;
type Runtime = typeof RUNTIMES[number];

const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-failures-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Run the CLI to its end: exit status, stdout, stderr. */
function cli(runtime: Runtime, argv: string[]) {
  const [cmd, args] = runtime === "node" ? ["node", ["dist/cli.mjs", ...argv]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv]];
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/** The run failed with status `status` and a message on stderr matching `pattern`, with no stack trace. */
function failsWith(r: ReturnType<typeof cli>, status: number, pattern: RegExp | string, what: string) {
  assert.is(r.status, status, `${what}: exit status (stderr: ${r.stderr})`);
  assert.match(r.stderr, pattern, what);
  assert.not.match(r.stderr, /^\s+at /m, `${what}: no stack trace:\n${r.stderr}`);
}

const mlp = ["train", "--model", "mlp", "--dataset", "synthetic", "--threads", "1"];

cliTest("a diverging run exits 1 naming the step, epoch and last finite loss; its last checkpoint stays, no model is written", () => {
  for (const runtime of RUNTIMES) {
    const out = join(dir, `diverge-${runtime}`);
    // lr 30 with a constant schedule diverges in the second epoch (16 steps each).
    const r = cli(runtime, [...mlp, "--lr", "30", "--schedule", "constant", "--warmup", "0", "--epochs", "3", "--out", out]);
    failsWith(r, 1, /retrograd train: training diverged at step (\d+) \(epoch 2\): loss \S+, gradient norm \S+; the last finite loss was \S+ \(step \d+\)/, runtime);
    assert.match(r.stderr, `The last checkpoint (${join(out, "checkpoint.safetensors")}) is as it was; no model was written.`);
    assert.not.ok(existsSync(join(out, "model.safetensors")), `${runtime}: no model`);
    const bytes = new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")));
    assert.is(JSON.parse(rg.io.readSafetensorsMetadata(bytes).position).step, 16, `${runtime}: the checkpoint of epoch 1`);
    for (const [name, t] of rg.io.readSafetensors(bytes)) assert.ok(t.dataSync().every(Number.isFinite), `${runtime}: ${name} is finite`);
    const last = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").pop()!;
    assert.match(last, /^\{"type":"diverged","step":\d+,"epoch":2,"lastFiniteLoss":/);
  }
});

cliTest("--on-nonfinite skip trains on, counts the skipped steps, and metrics.jsonl says NaN, which plot reads", () => {
  const out = join(dir, "skip");
  const r = cli("node", [...mlp, "--lr", "1000", "--epochs", "2", "--on-nonfinite", "skip", "--save-every", "1", "--json", "--out", out]);
  assert.is(r.status, 0, r.stderr);
  const summary = rg.io.parseRecord(r.stdout.trim().split("\n").pop()!) as { skippedSteps: number; history: rg.train.EpochRecord[] };
  assert.ok(summary.skippedSteps > 0, `skipped ${summary.skippedSteps}`);
  assert.match(r.stderr, `${summary.skippedSteps} steps skipped`);
  const text = readFileSync(join(out, "metrics.jsonl"), "utf8");
  assert.match(text, /"gradNorm":"Infinity"/);
  assert.match(text, /"trainAccuracy":"NaN"/, "an epoch with every step skipped");
  assert.not.match(text, /null/);
  const lines = text.trim().split("\n").map((l) => rg.io.parseRecord(l) as { type: string; skipped?: boolean; skippedSteps?: number });
  assert.is(lines.filter((l) => l.skipped).length, summary.skippedSteps, "every skipped step has its record");
  assert.equal(lines.filter((l) => l.type === "epoch").map((l) => l.skippedSteps), summary.history.map((h) => h.skippedSteps));
});

cliTest("plot reads non-finite metrics back as numbers", async () => {
  const run = await readRun(join(dir, "skip"));
  assert.ok(run.history.some((h) => Number.isNaN(h.trainLoss)), "a NaN train loss, as a number");
  const r = cli("node", ["plot", join(dir, "skip"), "--out", join(dir, "skip.svg")]);
  assert.is(r.status, 0, r.stderr);
  assert.match(readFileSync(join(dir, "skip.svg"), "utf8"), /^<svg/);
});

cliTest("the synthetic dataset's test split shares the training split's classes: a short run generalises", () => {
  const r = cli("node", [...mlp, "--steps", "30", "--json", "--out", join(dir, "synthetic")]);
  assert.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.ok(summary.testAccuracy > 0.8, `test accuracy ${summary.testAccuracy}`);
});

cliTest("bench --threads abc is one line naming the flag", () => {
  for (const runtime of RUNTIMES) failsWith(cli(runtime, ["bench", "--threads", "abc"]), 1, /retrograd bench: bench --threads: must be a comma-separated list of integers ≥ 1, got "abc"/, runtime);
});

test.run();
