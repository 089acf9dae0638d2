/**
 * `retrograd train --conv-algorithm` end to end (Node, dist/cli.mjs, synthetic data): the choice
 * reaches the kernels (Winograd rounds differently, so the weights differ from the direct run's
 * while the loss stays close), is recorded in config.json, and --resume keeps it; a bad name is refused
 * naming the flag. It runs once, from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const realTest = "Deno" in globalThis ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-conv-"));
const args = ["train", "--model", "resnet20", "--width", "0.5", "--dataset", "synthetic", "--batch-size", "16", "--seed", "3", "--save-every", "1", "--threads", "1", "--json"];
const cli = (extra: string[]) => spawnSync("node", ["dist/cli.mjs", ...extra], { encoding: "utf8", timeout: 600_000 });
const weights = (run: string) => readFileSync(join(dir, run, "model.safetensors"));

realTest("--conv-algorithm winograd: used, recorded, kept on --resume", () => {
  const direct = cli([...args, "--steps", "4", "--out", join(dir, "direct")]);
  assert.is(direct.status, 0, direct.stderr);
  const winograd = cli([...args, "--steps", "4", "--conv-algorithm", "winograd", "--out", join(dir, "winograd")]);
  assert.is(winograd.status, 0, winograd.stderr);
  assert.match(winograd.stderr, /winograd convolutions/);
  assert.is(JSON.parse(readFileSync(join(dir, "winograd", "config.json"), "utf8")).convAlgorithm, "winograd");
  assert.is(JSON.parse(readFileSync(join(dir, "direct", "config.json"), "utf8")).convAlgorithm, undefined);
  assert.not.equal(weights("winograd"), weights("direct"), "Winograd's rounding reaches the weights");
  const loss = (r: typeof direct) => JSON.parse(r.stdout.trim().split("\n").pop()!).history[0].trainLoss as number;
  assert.ok(Math.abs(loss(winograd) - loss(direct)) < 1e-4 * Math.abs(loss(direct)), `${loss(winograd)} vs ${loss(direct)}`);

  // --resume reads the choice back from config.json.
  const resumed = cli(["train", "--resume", join(dir, "winograd"), "--json"]);
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /winograd convolutions/);
});

realTest("--conv-algorithm: an unknown name is refused, naming the flag", () => {
  const r = cli([...args, "--steps", "1", "--conv-algorithm", "fft", "--out", join(dir, "bad")]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /--conv-algorithm/);
});

test.run();
