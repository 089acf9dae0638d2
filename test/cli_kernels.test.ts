/**
 * `retrograd train`'s CPU kernels end to end (Node, dist/cli.mjs, synthetic data): by default
 * the start-up probe chooses (relaxed where relaxed_madd is fused, as on this x86-64 machine
 * with FMA3), --deterministic forces the plain build, and config.json records the build and
 * the probe's finding. Under V8's --no-enable-fma3 (relaxed_madd unfused, as on a CPU without
 * FMA3) the default is the plain build and its weights equal a --deterministic run's; --resume
 * keeps the recorded build and warns where this engine rounds it otherwise. It runs once, from
 * the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { probeRelaxedMadd } from "../src/backend/cpu/madd_probe.ts";

const realTest = "Deno" in globalThis ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-kernels-"));
const args = ["train", "--model", "resnet20", "--width", "0.5", "--dataset", "synthetic", "--batch-size", "16", "--seed", "3", "--threads", "1", "--steps", "3"];
/** Run the CLI; `log` is everything it printed (progress goes to stdout without --json). */
const cli = (extra: string[], v8: string[] = []) => {
  const r = spawnSync("node", [...v8, "dist/cli.mjs", ...extra], { encoding: "utf8", timeout: 600_000 });
  return { status: r.status, stderr: r.stderr, log: r.stdout + r.stderr };
};
const weights = (run: string) => readFileSync(join(dir, run, "model.safetensors"));
const config = (run: string) => JSON.parse(readFileSync(join(dir, run, "config.json"), "utf8"));
enableNodeRelaxedSimd();
const fused = probeRelaxedMadd() === "fused";

realTest("default kernels follow the probe and are recorded; --deterministic forces plain", () => {
  const auto = cli([...args, "--out", join(dir, "auto")]);
  assert.is(auto.status, 0, auto.stderr);
  const plain = cli([...args, "--deterministic", "--out", join(dir, "plain")]);
  assert.is(plain.status, 0, plain.stderr);
  const expected = fused ? "relaxed" : "plain";
  assert.match(auto.log, new RegExp(`, ${expected} kernels`));
  assert.is(config("auto").kernels, expected);
  assert.is(config("auto").relaxedMadd, probeRelaxedMadd());
  assert.is(config("auto").deterministic, undefined);
  assert.equal([config("plain").kernels, config("plain").deterministic], ["plain", true]);
  assert.match(plain.log, /, plain kernels/);
  if (fused) assert.not.equal(weights("auto"), weights("plain"), "the fused build's rounding reaches the weights");
});

realTest("without FMA (V8 --no-enable-fma3) the default is plain, with the plain bits; --resume keeps a run's build and warns", () => {
  if (process.arch !== "x64") return; // elsewhere V8 fuses whatever the flag says
  const noFma = cli([...args, "--out", join(dir, "no-fma")], ["--no-enable-fma3"]);
  assert.is(noFma.status, 0, noFma.stderr);
  assert.equal([config("no-fma").kernels, config("no-fma").relaxedMadd], ["plain", "unfused"]);
  assert.equal(weights("no-fma"), weights("plain"), "a machine without FMA trains the plain build's bits");

  const resumed = cli(["train", "--resume", join(dir, "auto")]);
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.log, new RegExp(`, ${config("auto").kernels} kernels`));
  assert.not.match(resumed.log, /warning: this run trained on/);
  if (!fused) return;
  const elsewhere = cli(["train", "--resume", join(dir, "auto")], ["--no-enable-fma3"]);
  assert.is(elsewhere.status, 0, elsewhere.stderr);
  assert.match(elsewhere.log, /warning: this run trained on the relaxed kernels \(relaxed_madd fused\); here it continues on the relaxed kernels \(relaxed_madd unfused\)/);
});

test.run();
