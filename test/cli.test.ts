/**
 * The CLI end to end on real data: a short Fashion-MNIST training under Node (dist/cli.mjs)
 * and under Deno (cli/main.ts) with the same seed must print the same numbers and write the
 * same weights; `eval` on the saved weights must agree with the run's own evaluation; the
 * output directory holds config.json, metrics.jsonl, checkpoint.safetensors and curves.svg.
 * It spawns both runtimes itself, so it runs once, from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const isDeno = "Deno" in globalThis;
const hasData = existsSync("/usr/share/datasets/fashion-mnist");
const skipReason = isDeno
  ? "runs from the Node pass (it spawns both runtimes itself)"
  : !hasData ? "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)" : "";
if (skipReason) console.log(`cli.test: end-to-end training skipped: ${skipReason}`);
const realTest = skipReason ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-"));
const args = ["train", "--steps", "40", "--batch-size", "64", "--seed", "3", "--json", "--save-every", "10"];

function run(runtime: "node" | "deno", extra: string[]) {
  const [cmd, pre] = runtime === "node" ? ["node", ["dist/cli.mjs"]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts"]];
  const r = spawnSync(cmd, [...pre, ...extra], { encoding: "utf8", timeout: 600_000 });
  assert.is(r.status, 0, `${runtime} ${extra.join(" ")} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

realTest("a short real training gives the same numbers under Node and Deno, and learns", () => {
  const node = run("node", [...args, "--out", join(dir, "node")]);
  const deno = run("deno", [...args, "--out", join(dir, "deno")]);
  assert.is(node.steps, 40);
  assert.ok(node.testAccuracy > 0.5, `test accuracy after 40 steps: ${node.testAccuracy}`);
  assert.is(deno.testAccuracy, node.testAccuracy);
  assert.is(deno.testLoss, node.testLoss);
  const steps = (d: string) => readFileSync(join(dir, d, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .map((r) => [r.type, r.step, r.loss ?? r.trainLoss]);
  assert.equal(steps("deno"), steps("node"));
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

realTest("bad CLI input exits with status 2 and a message naming the flag", () => {
  const r = spawnSync("node", ["dist/cli.mjs", "train", "--lr", "-1"], { encoding: "utf8" });
  assert.is(r.status, 2);
  assert.match(r.stderr, /--lr: must be > 0/);
});

test.run();
