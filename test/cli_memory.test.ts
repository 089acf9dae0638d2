/**
 * `retrograd train --memory-budget` end to end (Node, dist/cli.mjs, synthetic data): the plan
 * and its predicted peak are in config.json, every step record carries the measured peak, which
 * equals the prediction from the second step on (the first has no momentum buffers yet during
 * its backward pass); the weights are the bytes of the same run without a budget; a budget below
 * every plan is refused with status 2, naming the flag and the smallest feasible budget; --resume
 * trains through the plan config.json recorded, and refuses one that was tampered with;
 * --memory-plan graph plans over the ops (cuts inside residual blocks), trains to the same
 * weights and measures within 10 % of its coarser prediction. It runs once, from the Node pass
 * of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const isDeno = "Deno" in globalThis;
const realTest = isDeno ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-memory-"));
const args = ["train", "--model", "resnet20", "--dataset", "synthetic", "--steps", "3", "--batch-size", "16", "--seed", "4", "--save-every", "1", "--threads", "1", "--json"];

function train(extra: string[]) {
  return spawnSync("node", ["dist/cli.mjs", ...args, ...extra], { encoding: "utf8", timeout: 600_000 });
}

realTest("--memory-budget: the plan in config.json, measured peaks equal to the prediction, the same weights", () => {
  const plain = train(["--out", join(dir, "plain")]);
  assert.is(plain.status, 0, plain.stderr);
  const planned = train(["--out", join(dir, "planned"), "--memory-budget", "12"]);
  assert.is(planned.status, 0, planned.stderr);
  assert.match(planned.stderr, /memory plan \(optimal, budget 12\.0 MiB/);
  const config = JSON.parse(readFileSync(join(dir, "planned", "config.json"), "utf8"));
  const plan = config.memory.plan;
  assert.is(config.memory.budgetMiB, 12);
  assert.is(config.train.evalBatchSize, 16, "evaluation at the training batch size, inside the budget too");
  assert.ok(plan.predictedPeakBytes <= 12 * 2 ** 20 && plan.predictedPeakBytes < plan.keepAllPeakBytes, JSON.stringify(plan));
  assert.ok(plan.segments.some((s: { recompute: boolean }) => s.recompute), "something is recomputed");
  const peaks = readFileSync(join(dir, "planned", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((r) => r.type === "step").map((r) => r.peakBytes);
  assert.is(peaks.length, 3);
  assert.equal(peaks.slice(1), [plan.predictedPeakBytes, plan.predictedPeakBytes], "measured = predicted");
  assert.ok(peaks[0] <= plan.predictedPeakBytes);
  const summary = JSON.parse(planned.stdout.trim().split("\n").pop()!);
  assert.equal(summary.memory, { predictedPeakBytes: plan.predictedPeakBytes, measuredPeakBytes: plan.predictedPeakBytes });
  assert.equal(readFileSync(join(dir, "planned", "model.safetensors")), readFileSync(join(dir, "plain", "model.safetensors")), "the same weights");

  // --resume reads the plan back from config.json, checked, and trains through it again.
  const resumed = spawnSync("node", ["dist/cli.mjs", "train", "--resume", join(dir, "planned"), "--json"], { encoding: "utf8", timeout: 600_000 });
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /memory plan \(optimal, budget 12\.0 MiB/);
  writeFileSync(join(dir, "planned", "config.json"), JSON.stringify({ ...config, memory: { ...config.memory, plan: { ...plan, method: "fast" } } }));
  const tampered = spawnSync("node", ["dist/cli.mjs", "train", "--resume", join(dir, "planned")], { encoding: "utf8", timeout: 600_000 });
  assert.is.not(tampered.status, 0);
  assert.match(tampered.stderr, /config\.json: memory\.plan\.method must be one of "none", "sqrt", "greedy", "optimal", "graph", got "fast"/);
});

realTest("--memory-plan graph: Kusumoto et al.'s plan over the ops, cuts inside blocks, the same weights, the measured peak near the prediction", () => {
  const r = train(["--out", join(dir, "graph"), "--memory-budget", "13.5", "--memory-plan", "graph"]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /memory plan \(graph, budget 13\.5 MiB/);
  const plan = JSON.parse(readFileSync(join(dir, "graph", "config.json"), "utf8")).memory.plan;
  assert.ok(plan.graphSegments.some((s: { recompute: boolean }) => s.recompute), "something is recomputed");
  assert.ok(plan.graphSegments.some((s: { names: string[] }) => /\.(conv\d|bn\d\+relu)$/.test(s.names.at(-1)!)), `a segment ends inside a residual block: ${JSON.stringify(plan.graphSegments.map((s: { names: string[] }) => s.names.at(-1)))}`);
  assert.ok(plan.predictedPeakBytes <= 13.5 * 2 ** 20, JSON.stringify(plan));
  const peaks = readFileSync(join(dir, "graph", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((r) => r.type === "step").map((r) => r.peakBytes);
  // Kusumoto et al.'s model counts values, not the backward rules' scratch: a margin, not the byte (docs/memory.md).
  for (const peak of peaks.slice(1)) assert.ok(Math.abs(peak / plan.predictedPeakBytes - 1) <= 0.1, `measured ${peak}, predicted ${plan.predictedPeakBytes}`);
  assert.equal(readFileSync(join(dir, "graph", "model.safetensors")), readFileSync(join(dir, "plain", "model.safetensors")), "the same weights");
  const resumed = spawnSync("node", ["dist/cli.mjs", "train", "--resume", join(dir, "graph"), "--json"], { encoding: "utf8", timeout: 600_000 });
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /memory plan \(graph, budget 13\.5 MiB/);
});

realTest("--memory-budget with AdamW and an EMA: the plan counts their state (two moments and the averaged copy)", () => {
  const r = train(["--out", join(dir, "adamw"), "--optimizer", "adamw", "--lr", "0.001", "--ema", "0.99", "--memory-budget", "15.5"]);
  assert.is(r.status, 0, r.stderr);
  const plan = JSON.parse(readFileSync(join(dir, "adamw", "config.json"), "utf8")).memory.plan;
  const peaks = readFileSync(join(dir, "adamw", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((r) => r.type === "step").map((r) => r.peakBytes);
  // From the second step on, the state exists through the whole step; its 0-d step counters are
  // the only bytes the prediction leaves out.
  for (const peak of peaks.slice(1)) {
    assert.ok(Math.abs(peak - plan.predictedPeakBytes) <= 0.005 * plan.predictedPeakBytes, `measured ${peak}, predicted ${plan.predictedPeakBytes}`);
  }
});

realTest("--memory-budget below every plan's peak: status 2, the flag and the smallest feasible budget named", () => {
  const r = train(["--out", join(dir, "tiny"), "--memory-budget", "1"]);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /--memory-budget 1: memory budget 1\.0 MiB is below the smallest feasible budget [\d.]+ MiB \(\d+ bytes/);
  const vgg = train(["--out", join(dir, "vgg"), "--model", "vgg11", "--memory-budget", "100"]);
  assert.is(vgg.status, 2, vgg.stderr);
  assert.match(vgg.stderr, /--memory-budget 100: .*VGG is not a chain of blocks/);
});

test.run();
