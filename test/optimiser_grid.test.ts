/**
 * The optimiser comparison's grid logic (bench/optimisers/spec.ts): which rate the tuning
 * phase picks for an arm (the best held-out accuracy, a tie to the smaller rate, a diverged
 * run never), that an arm's final runs wait for all of its tuning runs, and the data split
 * (tuning never trains on the held-out images). Training itself is the Trainer's, tested
 * elsewhere; here result files are written by hand.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARMS, pendingRuns, type Recipe, RESULT_FILE, runName, tunedLr, tuneRuns, tuneTrainImages } from "../bench/optimisers/spec.ts";

const arm = (name: string) => ARMS.find((a) => a.optimizer === name)!;

function recipe(over: Partial<Recipe> = {}): Recipe {
  return {
    model: "mlp", width: 1, arms: [arm("sgd"), arm("adamw")], padding: 0, trainImages: 60000, heldOut: 10000, testImages: 10000,
    epochs: 3, tuneEpochs: 1, seeds: [0, 1, 2], batchSize: 128, logEvery: 50, ...over,
  };
}

/** Write a tuning run's result: its held-out accuracy, or a diverged run. */
function finishTune(out: string, r: Recipe, optimizer: string, lr: number, accuracy: number | "diverged"): void {
  const dir = join(out, runName("tune", optimizer, lr, r.seeds[0]));
  mkdirSync(dir, { recursive: true });
  const diverged = accuracy === "diverged";
  writeFileSync(join(dir, RESULT_FILE), JSON.stringify({ diverged, evalAccuracy: diverged ? null : accuracy, history: [] }));
}

test("tuning picks the best held-out accuracy; a tie goes to the smaller rate; a diverged rate never wins", () => {
  const out = mkdtempSync(join(tmpdir(), "retrograd-optgrid-"));
  const r = recipe();
  const [a, b, c, d] = arm("sgd").lrs;
  finishTune(out, r, "sgd", a, 0.81);
  finishTune(out, r, "sgd", b, 0.84);
  finishTune(out, r, "sgd", c, 0.84);
  assert.is(tunedLr(out, r, arm("sgd")), null, "a rate still unfinished");
  finishTune(out, r, "sgd", d, "diverged");
  const tuned = tunedLr(out, r, arm("sgd"))!;
  assert.is(tuned.lr, b);
  assert.is(tuned.scores.get(d), -Infinity);
  finishTune(out, r, "sgd", d, 0.9); // the same run rewritten as the best
  assert.is(tunedLr(out, r, arm("sgd"))!.lr, d);
});

test("final runs: every seed at the tuned rate, only for arms whose tuning has finished", () => {
  const out = mkdtempSync(join(tmpdir(), "retrograd-optgrid-"));
  const r = recipe();
  assert.equal(tuneRuns(r).map((run) => run.name), [...arm("sgd").lrs.map((lr) => `tune-sgd-lr${lr}-seed0`), ...arm("adamw").lrs.map((lr) => `tune-adamw-lr${lr}-seed0`)]);
  arm("sgd").lrs.forEach((lr, k) => finishTune(out, r, "sgd", lr, k === 2 ? 0.9 : 0.8));
  const { runs, waitingArms } = pendingRuns(out, r);
  assert.equal(waitingArms, ["adamw"]);
  const finals = runs.filter((run) => run.phase === "final");
  assert.equal(finals.map((run) => run.name), [0, 1, 2].map((seed) => runName("final", "sgd", arm("sgd").lrs[2], seed)));
  assert.ok(finals.every((run) => run.arm.optimizer === "sgd" && run.lr === arm("sgd").lrs[2]));
});

test("the tuning split never includes the held-out images", () => {
  assert.is(tuneTrainImages(recipe()), 50000);
  assert.is(tuneTrainImages(recipe({ trainImages: 12000, heldOut: 5000 })), 12000);
  assert.is(tuneTrainImages(recipe({ trainImages: 58000, heldOut: 5000 })), 55000);
});

test.run();
