/**
 * `retrograd train --conv-algorithm` end to end (Node, dist/cli.mjs, synthetic data): the choice
 * reaches the kernels (Winograd rounds differently, so the weights differ from the direct run's
 * while the loss stays close), is recorded in config.json, and --resume keeps it; without the
 * flag a run is on "auto" and records it, and a run from before it was recorded (no
 * convAlgorithm in its config.json) resumes on the direct kernels; a bad name is refused
 * naming the flag. It runs once, from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const realTest = "Deno" in globalThis ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-conv-"));
const args = ["train", "--model", "resnet20", "--width", "0.5", "--dataset", "synthetic", "--batch-size", "16", "--seed", "3", "--save-every", "1", "--threads", "1", "--json"];
const cli = (extra: string[]) => spawnSync("node", ["dist/cli.mjs", ...extra], { encoding: "utf8", timeout: 600_000 });
const weights = (run: string) => readFileSync(join(dir, run, "model.safetensors"));

realTest("--conv-algorithm winograd: used, recorded, kept on --resume", () => {
  const direct = cli([...args, "--steps", "4", "--conv-algorithm", "direct", "--out", join(dir, "direct")]);
  assert.is(direct.status, 0, direct.stderr);
  const winograd = cli([...args, "--steps", "4", "--conv-algorithm", "winograd", "--out", join(dir, "winograd")]);
  assert.is(winograd.status, 0, winograd.stderr);
  assert.match(winograd.stderr, /winograd convolutions/);
  assert.is(JSON.parse(readFileSync(join(dir, "winograd", "config.json"), "utf8")).convAlgorithm, "winograd");
  assert.is(JSON.parse(readFileSync(join(dir, "direct", "config.json"), "utf8")).convAlgorithm, "direct");
  assert.not.equal(weights("winograd"), weights("direct"), "Winograd's rounding reaches the weights");
  const loss = (r: typeof direct) => JSON.parse(r.stdout.trim().split("\n").pop()!).history[0].trainLoss as number;
  assert.ok(Math.abs(loss(winograd) - loss(direct)) < 1e-4 * Math.abs(loss(direct)), `${loss(winograd)} vs ${loss(direct)}`);

  // --resume reads the choice back from config.json.
  const resumed = cli(["train", "--resume", join(dir, "winograd"), "--json"]);
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /winograd convolutions/);
});

realTest("auto by default, recorded; a run from before it was recorded resumes on the direct kernels", () => {
  const auto = cli([...args, "--steps", "2", "--out", join(dir, "auto")]);
  assert.is(auto.status, 0, auto.stderr);
  assert.match(auto.stderr, /auto convolutions/);
  assert.is(JSON.parse(readFileSync(join(dir, "auto", "config.json"), "utf8")).convAlgorithm, "auto");
  const resumedAuto = cli(["train", "--resume", join(dir, "auto"), "--json"]);
  assert.is(resumedAuto.status, 0, resumedAuto.stderr);
  assert.match(resumedAuto.stderr, /auto convolutions/);

  // runs written before #19 made "auto" the default recorded only a choice other than direct
  const old = cli([...args, "--steps", "2", "--conv-algorithm", "direct", "--out", join(dir, "old")]);
  assert.is(old.status, 0, old.stderr);
  const configPath = join(dir, "old", "config.json");
  const { convAlgorithm: _dropped, ...config } = JSON.parse(readFileSync(configPath, "utf8"));
  writeFileSync(configPath, JSON.stringify(config));
  const resumedOld = cli(["train", "--resume", join(dir, "old"), "--json"]);
  assert.is(resumedOld.status, 0, resumedOld.stderr);
  assert.match(resumedOld.stderr, /direct convolutions/);
});

realTest("--conv-algorithm: an unknown name is refused, naming the flag", () => {
  const r = cli([...args, "--steps", "1", "--conv-algorithm", "fft", "--out", join(dir, "bad")]);
  assert.is(r.status, 2);
  assert.match(r.stderr, /--conv-algorithm/);
});

test.run();
