/**
 * The PowerGrad grid (bench/powergrad.ts, bench/grid/): several worker processes share one
 * grid, are killed with SIGKILL at random moments (mid-epoch, mid-write, between runs) and
 * restarted, and the grid still ends with exactly the results of an uninterrupted grid: every
 * run's figures, per-epoch curves and filter norms bit for bit (wall-clock timings aside) and
 * the same report. Workers alternate Node and Deno, so the runtimes also share a grid. The
 * claim rules, the row syntax and the paired statistics are checked on their own too. It
 * spawns both runtimes itself, so it runs from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive, me, tryClaim } from "../bench/grid/claim.ts";
import { type GridSpec, GridError, orderedRuns, parseRow, type Recipe, runIdentity, trainConfig } from "../bench/grid/spec.ts";
import { buildFigures } from "../bench/grid/figures.ts";
import { meanStd, pairedDifference } from "../bench/grid/stats.ts";

const isDeno = "Deno" in globalThis;
const processTest = isDeno ? test.skip : test;
const dir = mkdtempSync(join(tmpdir(), "retrograd-grid-"));

// Two rows (an MLP, and a ResNet-20 without BatchNorm for conv filter norms) × 2 α × 2 seeds
// on 256 synthetic images: eight runs of a few seconds in all.
const gridArgs = [
  "--rows", "mlp@0.1:4,resnet20-nonorm@0.125:2", "--alphas", "1,0.25", "--seeds", "0,1", "--dataset", "synthetic",
  "--subset", "256", "--test-subset", "128", "--batch-size", "32", "--augment", "none", "--poll", "0.2",
];
const runNames = ["mlp-w0.1-e4", "resnet20-nonorm-w0.125-e2"].flatMap((row) =>
  ["a1", "a0.25"].flatMap((a) => ["s0", "s1"].map((s) => `${row}-${a}-${s}`)));

function worker(runtime: "node" | "deno", out: string): ChildProcess {
  const [cmd, args] = runtime === "node"
    ? ["node", ["build/powergrad.mjs", ...gridArgs, "--out", out]]
    : ["node_modules/.bin/deno", ["run", "-A", "--quiet", "bench/powergrad.ts", ...gridArgs, "--out", out]];
  return spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** A run's result without wall-clock timings, which no two runs share. */
function figures(out: string, name: string) {
  const result = JSON.parse(readFileSync(join(out, name, "result.json"), "utf8"));
  for (const record of result.history) {
    delete record.seconds;
    delete record.imagesPerSec;
  }
  return result;
}

/** report.md without its command line (which names the directory). */
function report(out: string): string {
  const r = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--out", out, "--report"], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  return readFileSync(join(out, "report.md"), "utf8").replace(/^Command: .*$/m, "");
}

/** A small seeded generator, so a failing schedule of kills can be replayed from the log. */
function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

processTest("a grid killed with SIGKILL at random moments, six times, ends with the uninterrupted grid's results, bit for bit", async () => {
  const straight = join(dir, "straight");
  const r = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--out", straight], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  for (const name of runNames) assert.ok(existsSync(join(straight, name, "result.json")), `${name} finished`);

  const killed = join(dir, "killed");
  const random = lcg(Date.now());
  const schedule: string[] = [];
  let log = "";
  let kills = 0;
  let spawned = 0;
  const running = new Set<ChildProcess>();
  const exits: Promise<unknown>[] = [];
  const start = () => {
    const child = worker(spawned++ % 2 === 0 ? "node" : "deno", killed);
    running.add(child);
    child.stderr!.on("data", (d) => {
      log += d;
      // Each finished epoch is a chance to be killed a few milliseconds later: mid-epoch, mid-checkpoint, mid-result.
      if (kills < 6 && /epoch \d+\/\d+/.test(String(d)) && random() < 0.5) {
        kills++;
        const delay = Math.floor(random() * 40);
        schedule.push(`pid ${child.pid} ${delay} ms after "${String(d).trim().split("] ").pop()}"`);
        setTimeout(() => {
          if (running.has(child)) child.kill("SIGKILL");
        }, delay);
      }
    });
    exits.push(once(child, "exit").then(([code, signal]) => {
      running.delete(child);
      if (signal === "SIGKILL") start(); // a replacement picks up where the killed one stopped
      else assert.is(code, 0, `worker ${child.pid} failed:\n${log}`);
    }));
  };
  start();
  start();
  while (running.size > 0) await Promise.all([...exits]);
  const context = `kills: ${schedule.join("; ")}\n${log}`;
  assert.is(kills, 6, `six workers were killed (${context})`);
  assert.match(log, /resumed after epoch \d/, "some run was resumed from its checkpoint");
  // Claims: no run was finished by two processes (as two workers training it side by side would).
  for (const name of runNames) {
    assert.is(log.split("\n").filter((l) => l.includes(`] ${name}: done`)).length, 1, `${name} finished once (${context})`);
  }

  for (const name of runNames) {
    assert.equal(figures(killed, name), figures(straight, name), `${name} (${context})`);
    const left = readdirSync(join(killed, name)).filter((f) => f.includes("claim-") || f.includes(".tmp"));
    assert.equal(left, [], `${name}: no claims or temporary files left`);
  }
  assert.is(report(killed), report(straight));
});

processTest("--report says which runs have not finished and where they stand; --export copies the finished runs' files", () => {
  const out = join(dir, "partial");
  const r = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--seeds", "0", "--out", out], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const rep = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--out", out, "--report"], { encoding: "utf8" });
  assert.is(rep.status, 0, rep.stderr);
  assert.match(rep.stdout, "# PowerGrad grid: 4 of 8 runs finished");
  assert.match(rep.stdout, "- mlp-w0.1-e4-a1-s1: not started");
  assert.ok(existsSync(join(out, "gain.svg")) && existsSync(join(out, "curves-mlp-w0.1-e4.svg")));
  const copy = join(dir, "exported");
  assert.is(spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--out", out, "--export", copy]).status, 0);
  assert.equal(readdirSync(copy).sort(), runNames.filter((n) => n.endsWith("s0")).sort());
  assert.equal(readdirSync(join(copy, "mlp-w0.1-e4-a1-s0")).sort(), ["config.json", "result.json"]);
  // The copy reports like the grid itself.
  const again = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--out", copy, "--report"], { encoding: "utf8" });
  assert.is(again.stdout.replace(/^Command: .*$/m, ""), rep.stdout.replace(/^Command: .*$/m, ""));
  // A run directory made with other settings is never continued.
  const changed = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--lr", "0.05", "--out", out],
    { encoding: "utf8" });
  assert.is(changed.status, 2);
  assert.match(changed.stderr, /made with other settings than this grid's/);
});

processTest("a finished grid run again clears the claims of processes killed between a run's result and its release", () => {
  const out = join(dir, "partial"); // seed 0 finished by the test above
  const run = join(out, "mlp-w0.1-e4-a1-s0");
  const dead = { pid: 2 ** 22 + 17, startTicks: 1, bootId: me().bootId };
  const live = { ...me(), pid: process.ppid, startTicks: null };
  writeFileSync(join(run, `claim-${dead.pid}`), JSON.stringify(dead));
  writeFileSync(join(run, `.claim-${dead.pid}.tmp`), "{half");
  writeFileSync(join(run, `claim-${live.pid}`), JSON.stringify(live));
  const r = spawnSync("node", ["build/powergrad.mjs", ...gridArgs, "--seeds", "0", "--out", out], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  assert.equal(readdirSync(run).filter((f) => f.includes("claim-")), [`claim-${live.pid}`], "dead claims gone, the live one kept");
  unlinkSync(join(run, `claim-${live.pid}`));
});

processTest("a run that diverges is finished as diverged, and the grid goes on with its other runs", () => {
  // Peak rate 1e6: the MLP's weights overflow within a few steps.
  const args = ["--rows", "mlp@0.1:2+lr1e6,mlp@0.1:2", "--alphas", "1", "--seeds", "0", "--dataset", "synthetic",
    "--subset", "256", "--test-subset", "128", "--batch-size", "32", "--augment", "none", "--out", join(dir, "diverging")];
  const r = spawnSync("node", ["build/powergrad.mjs", ...args], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  const diverged = JSON.parse(readFileSync(join(dir, "diverging", "mlp-w0.1-e2-lr1000000-a1-s0", "result.json"), "utf8"));
  assert.ok(diverged.diverged.step >= 1 && diverged.diverged.epoch === 1, JSON.stringify(diverged.diverged));
  assert.not.ok("final" in diverged, "a diverged run has no final figures");
  assert.ok(existsSync(join(dir, "diverging", "mlp-w0.1-e2-a1-s0", "result.json")), "the next run was trained");
  // Started again, the grid is complete: the diverged run is not trained again.
  const again = spawnSync("node", ["build/powergrad.mjs", ...args], { encoding: "utf8" });
  assert.is(again.status, 0, again.stderr);
  assert.not.match(again.stderr, /mlp-w0.1-e2-lr1000000-a1-s0: done/);
  const rep = spawnSync("node", ["build/powergrad.mjs", ...args, "--report"], { encoding: "utf8" });
  assert.match(rep.stdout, "# PowerGrad grid: 2 of 2 runs finished, 1 of them diverged");
  assert.match(rep.stdout, `- mlp-w0.1-e2-lr1000000-a1-s0: diverged at step ${diverged.diverged.step} (epoch 1 of 2)`);
  assert.not.match(rep.stdout, /\| mlp@0.1, 2 ep, lr 1000000 \|/, "no figures of the diverged run in the tables");
});

test("claims: a live claim keeps others out; a dead owner's claim is taken over and removed", () => {
  const run = join(dir, "claims");
  mkdirSync(run, { recursive: true });
  const release = tryClaim(run);
  assert.ok(release, "a free run is claimed");
  // This process holds it: another live process (our parent) would be refused.
  const parent = { ...me(), pid: process.ppid, startTicks: null };
  writeFileSync(join(run, `claim-${process.ppid}`), JSON.stringify(parent));
  release!();
  assert.is(tryClaim(run), null, "a live process's claim keeps the run");
  // A claim of a process that no longer exists, or of the same pid in another boot, is dead.
  const dead = { pid: 2 ** 22 + 17, startTicks: 1, bootId: parent.bootId };
  assert.not.ok(isAlive(dead));
  if (parent.bootId) assert.not.ok(isAlive({ ...me(), bootId: "another-boot" }));
  writeFileSync(join(run, `claim-${process.ppid}`), JSON.stringify(dead));
  writeFileSync(join(run, "claim-999999"), "{half a claim");
  const taken = tryClaim(run);
  assert.ok(taken, "dead claims do not keep the run");
  assert.equal(readdirSync(run).filter((f) => f.startsWith("claim-")), [`claim-${process.pid}`], "dead claims are removed");
  taken!();
  assert.equal(readdirSync(run), []);
});

test("rows, order and names: model[@width][:epochs][+lr<rate>][+agc<λ>], seed-major order, bad rows rejected", () => {
  assert.equal(parseRow("resnet20@0.25:30", 5), { model: "resnet20", width: 0.25, epochs: 30 });
  assert.equal(parseRow("mlp", 5), { model: "mlp", width: 1, epochs: 5 });
  assert.equal(parseRow("resnet20-nonorm@0.25:20+lr0.02", 5), { model: "resnet20-nonorm", width: 0.25, epochs: 20, lr: 0.02 });
  assert.equal(parseRow("resnet20-nonorm@0.25:16+agc0.01", 5), { model: "resnet20-nonorm", width: 0.25, epochs: 16, agc: 0.01 });
  assert.equal(parseRow("mlp+agc0.02+lr0.05", 5), { model: "mlp", width: 1, epochs: 5, lr: 0.05, agc: 0.02 });
  for (const bad of ["resnet99@1", "mlp@0", "mlp@x", "mlp:0", "mlp@0.5:2.5", "mlp+lr0", "mlp+agc0", "mlp+agc", "mlp+agc-1", "mlp+lr0.1+lr0.2", "mlp+clip1", "mlp+agc0.01+agcnogain0.01", "mlp+agcnogain0"]) {
    assert.throws(() => parseRow(bad, 5), (e: Error) => e instanceof GridError && e.message.includes(bad));
  }
  const rows = [parseRow("mlp@0.5", 3), parseRow("resnet20@0.25+lr0.05", 3)];
  const spec = { rows, alphas: [1, 0.5], seeds: [0, 1], recipe: { lr: 0.1 } as Recipe };
  const runs = orderedRuns(spec);
  assert.equal(runs.slice(0, 4).map((r) => trainConfig(spec, r, [0], [1]).lr), [0.1, 0.1, 0.05, 0.05], "a row's own rate");
  const names = runs.map((r) => r.name);
  assert.equal(names.slice(0, 4), ["mlp-w0.5-e3-a1-s0", "mlp-w0.5-e3-a0.5-s0", "resnet20-w0.25-e3-lr0.05-a1-s0", "resnet20-w0.25-e3-lr0.05-a0.5-s0"]);
  assert.is(names[4], "mlp-w0.5-e3-a1-s1");
  // AGC: its own name part (whatever the order in the row's text), in the config only where a row has it.
  const agcSpec = { ...spec, rows: [parseRow("mlp@0.5+agc0.01+lr0.05", 3)], seeds: [0] };
  const [agcRun] = orderedRuns(agcSpec);
  assert.is(agcRun.name, "mlp-w0.5-e3-lr0.05-agc0.01-a1-s0");
  assert.equal(trainConfig(agcSpec, agcRun, [0], [1]).optimizer, { name: "sgd", agc: 0.01 });
  assert.not.ok("optimizer" in trainConfig(spec, runs[0], [0], [1]), "rows without AGC keep their config.json as it was");
  // AGC with the skip gains unclipped: its own name part and the exclusion in the optimiser's settings.
  const freeSpec = { ...spec, rows: [parseRow("resnet20-nonorm@0.125:20+lr0.01+agcnogain0.01", 3)], seeds: [0] };
  assert.equal(freeSpec.rows[0], { model: "resnet20-nonorm", width: 0.125, epochs: 20, lr: 0.01, agcnogain: 0.01 });
  const [freeRun] = orderedRuns(freeSpec);
  assert.is(freeRun.name, "resnet20-nonorm-w0.125-e20-lr0.01-agcnogain0.01-a1-s0");
  assert.equal(trainConfig(freeSpec, freeRun, [0], [1]).optimizer, { name: "sgd", agc: 0.01, agcExclude: ["skip_gain"] });
});

test("figures: logit norms and zeroed filters at each threshold, from the runs' results; diverged runs left out", () => {
  const spec: GridSpec = {
    rows: [parseRow("mlp@0.5:2", 1)], alphas: [1, 0.5], seeds: [0, 1],
    recipe: { dataset: "synthetic", subset: 8, testSubset: 8, batchSize: 4, lr: 0.1, augment: "none" },
  };
  const out = join(dir, "figures");
  for (const run of orderedRuns(spec)) {
    const config = runIdentity(spec, run, trainConfig(spec, run, [0], [1]));
    const norm = 10 / run.alpha + run.seed;
    const result = run.alpha === 1 && run.seed === 1
      ? { config, diverged: { step: 3, epoch: 1, lastFiniteLoss: 9, message: "" }, history: [] }
      : {
        config, history: [1, 2].map((epoch) => ({ epoch, measures: { testLogitNorm: norm / epoch } })),
        final: { testAccuracy: 0.5, testLogitNorm: norm, smallestFilterRatio: 0.04 },
        // Medians 1 and 2: below 0.05 × median one filter (0.04), below 0.1 the same, below 0.2 also 0.15 and 0.3.
        filterNorms: { "layers.0": [1, 1, 1, 0.04, 0.15], "layers.3": [2, 2, 0.3, 2] },
      };
    mkdirSync(join(out, run.name), { recursive: true });
    writeFileSync(join(out, run.name, "result.json"), JSON.stringify(result));
  }
  const { markdown, plots } = buildFigures(spec, out);
  assert.equal([...plots.keys()].sort(), ["filters-mlp-w0.5-e2.svg", "logits-mlp-w0.5-e2.svg"]);
  assert.match(markdown, "| mlp@0.5, 2 ep | 1 | 0 | 50.00 | 10.00 | 10.00 | 1.0 | 1.0 | 3.0 | 0.040 |");
  assert.match(markdown, "| mlp@0.5, 2 ep | 0.5 | 0,1 | 50.00 ± 0.00 | 20.50 ± 0.71 | 10.25 ± 0.35 | 1.0 ± 0.0 | 1.0 ± 0.0 | 3.0 ± 0.0 | 0.040 ± 0.000 |");
  // Every layer gets a panel, and every (layer, run) a sorted line: 2 layers × 3 runs.
  const filters = plots.get("filters-mlp-w0.5-e2.svg")!;
  assert.ok(filters.includes(">layers.0<") && filters.includes(">layers.3<"));
  assert.is(filters.split("<polyline").length - 1, 2 * 3 + 3, "a line per layer and run, and the three thresholds' means");
});

test("statistics: sample std over seeds, and the baseline difference paired by seed", () => {
  const s = meanStd([1, 2, 3, 6]);
  assert.is(s.mean, 3);
  assert.ok(Math.abs(s.std - Math.sqrt(14 / 3)) < 1e-12);
  // Seeds 0, 1, 2 in both; seed 3 only in the arm: left out. Differences 1, 2, 3.
  const d = pairedDifference(new Map([[0, 10], [1, 20], [2, 30]]), new Map([[0, 11], [1, 22], [2, 33], [3, 99]]));
  assert.equal([d.mean, d.n], [2, 3]);
  assert.ok(Math.abs(d.se - 1 / Math.sqrt(3)) < 1e-12);
});

test.run();
