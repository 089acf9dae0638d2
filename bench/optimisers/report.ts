/**
 * The optimiser comparison's report from the finished runs (bench/optimisers.ts --report):
 * report.md beside the runs, with the tuning table (held-out accuracy of every rate, the rate
 * chosen), the final table (mean ± std over seeds of the clean training and the test
 * accuracy and loss) and the learning curves as tables (running train loss and test accuracy
 * after each epoch, mean over seeds, and each arm's difference to SGD paired by seed); and
 * the plots: learning curves per epoch (mean over seeds), the training loss against steps,
 * and the per-layer effective rates of scale-amended SGD, LARS and LAMB over training
 * (seed 0). Unfinished runs are listed, so a
 * report mid-grid says where it stands.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../../src/mod.ts";
import { renderCurves } from "../../src/io/plot.ts";
import { COLOURS } from "../../src/io/svg_chart.ts";
import { parseRecord } from "../../src/io/records.ts";
import type { EpochRecord } from "../../src/train/index.ts";
import { writeAtomic } from "../../cli/files.ts";
import { meanStd, pairedDifference } from "../grid/stats.ts";
import { ramp, renderLines, type Series } from "./lines.ts";
import type { Log } from "./run.ts";
import { type Arm, LOG_FILE, type Recipe, RESULT_FILE, type RunResult, runName, tunedLr, tuneTrainImages } from "./spec.ts";


interface StepLine {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  layers: Record<string, { rate: number; factor: number; min?: number; max?: number }>;
}

function readResult(dir: string): RunResult | null {
  const path = join(dir, RESULT_FILE);
  return existsSync(path) ? parseRecord(readFileSync(path, "utf8")) as RunResult : null;
}

function readSteps(dir: string): StepLine[] {
  const path = join(dir, LOG_FILE);
  return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => parseRecord(l) as StepLine) : [];
}

const pct = (v: number) => (100 * v).toFixed(2);
const fmt = (m: { mean: number; std: number; n: number }, scale: (v: number) => string, digits = 2) =>
  m.n === 0 ? "–" : m.n === 1 ? scale(m.mean) : `${scale(m.mean)} ± ${(Number(scale(m.std)) || 0).toFixed(digits)}`;

/** The mean over runs of their per-epoch records (runs of equal length). */
function meanHistory(histories: EpochRecord[][]): EpochRecord[] {
  if (histories.length === 0) return [];
  const length = Math.min(...histories.map((h) => h.length));
  return Array.from({ length }, (_, e) => {
    const at = histories.map((h) => h[e]);
    const avg = (key: "trainLoss" | "trainAccuracy" | "testLoss" | "testAccuracy") => at.reduce((a, r) => a + r[key], 0) / at.length;
    return { ...at[0], trainLoss: avg("trainLoss"), trainAccuracy: avg("trainAccuracy"), testLoss: avg("testLoss"), testAccuracy: avg("testAccuracy") };
  });
}

/**
 * Each arm's learning curve minus SGD's, paired by seed (a seed fixes the initial weights and
 * the batch order for every arm alike): mean ± standard error over the seeds both have.
 */
function differencesToSgd(histories: ReadonlyMap<string, ReadonlyMap<number, EpochRecord[]>>): string[] {
  const sgd = histories.get("sgd");
  if (!sgd || histories.size < 2) return [];
  const epochs = Math.min(...[...histories.values()].flatMap((bySeed) => [...bySeed.values()].map((h) => h.length)));
  const md: string[] = [];
  for (const [title, key, scale, digits] of [["running train loss", "trainLoss", 1, 4], ["test accuracy (points)", "testAccuracy", 100, 2]] as const) {
    md.push("", `Difference to SGD, ${title} after each epoch (paired by seed; mean ± standard error):`, "");
    md.push(`| optimiser | ${Array.from({ length: epochs }, (_, e) => e + 1).join(" | ")} |`, `|---|${"---|".repeat(epochs)}`);
    for (const [name, bySeed] of histories) {
      if (name === "sgd") continue;
      const cells = Array.from({ length: epochs }, (_, e) => {
        const at = (m: ReadonlyMap<number, EpochRecord[]>) => new Map([...m].map(([seed, h]) => [seed, scale * h[e][key]]));
        const d = pairedDifference(at(sgd), at(bySeed));
        return d.n === 0 ? "–" : `${d.mean >= 0 ? "+" : ""}${d.mean.toFixed(digits)}${d.n > 1 ? ` ± ${d.se.toFixed(digits)}` : ""}`;
      });
      md.push(`| ${name} | ${cells.join(" | ")} |`);
    }
  }
  return md;
}

/** The weights of the model's convolution and linear layers, in depth order. */
function layerWeights(recipe: Recipe): string[] {
  const imageSize = 28 + 2 * recipe.padding;
  const model = rg.models.createModel(recipe.model, { inChannels: 1, numClasses: 10, imageSize, widthMultiplier: recipe.width });
  const names = [...model.namedModules()].filter(([, m]) => m instanceof rg.nn.Conv2d || m instanceof rg.nn.Linear).map(([name]) => `${name}.weight`);
  model.dispose();
  return names;
}

/** The per-layer effective rates of one run against steps (log scale), the schedule's rate dashed. */
function ratesPlot(steps: StepLine[], weights: string[], title: string): string {
  const series: Series[] = weights.map((name, k) => ({
    name, colour: ramp(k, weights.length), points: steps.map((s) => [s.step, s.layers[name]?.rate ?? NaN] as const),
  }));
  series.push({ name: "schedule (lr)", colour: "#000", dash: "6,4", points: steps.map((s) => [s.step, s.lr] as const) });
  return renderLines(series, { title, xLabel: "step", yLabel: "effective learning rate (lr × factor)", logY: true });
}

export async function writeReport(recipe: Recipe, outDir: string, docs: string, log: Log): Promise<void> {
  const size = 28 + 2 * recipe.padding;
  const md: string[] = [`# Optimiser comparison: ${recipe.model} at width ${recipe.width} on Fashion-MNIST (${size}×${size})`, ""];
  const unfinished: string[] = [];

  md.push(`## Tuning (${recipe.tuneEpochs} epochs on the first ${tuneTrainImages(recipe)} training images, scored on the last ${recipe.heldOut}; seed ${recipe.seeds[0]})`, "");
  md.push("| optimiser | rate: held-out accuracy % (the chosen rate in bold) |", "|---|---|");
  const chosen = new Map<Arm, number>();
  for (const arm of recipe.arms) {
    const cells = arm.lrs.map((lr) => {
      const r = readResult(join(outDir, runName("tune", arm.optimizer, lr, recipe.seeds[0])));
      if (!r) unfinished.push(runName("tune", arm.optimizer, lr, recipe.seeds[0]));
      return `${lr}: ${r ? (r.diverged ? "diverged" : pct(r.evalAccuracy)) : "…"}`;
    });
    const tuned = tunedLr(outDir, recipe, arm);
    if (tuned) chosen.set(arm, tuned.lr);
    md.push(`| ${arm.optimizer} | ${cells.map((c) => (tuned && c.startsWith(`${tuned.lr}:`) ? `**${c}**` : c)).join(", ")} |`);
  }

  md.push("", `## Final runs (${recipe.epochs} epochs on the first ${recipe.trainImages} training images, scored on the first ${recipe.testImages} test images; seeds ${recipe.seeds.join(", ")}; mean ± std over seeds)`, "");
  md.push("| optimiser | lr | seeds | clean train acc % | clean train loss | test acc % | test loss | last-epoch running train loss |", "|---|---|---|---|---|---|---|---|");
  const curves: { name: string; history: EpochRecord[] }[] = [];
  /** Each arm's per-epoch records by seed, for the differences to SGD paired by seed. */
  const historiesBySeed = new Map<string, Map<number, EpochRecord[]>>();
  const lossSeries: Series[] = [];
  const seed0Steps = new Map<string, StepLine[]>();
  for (const arm of recipe.arms) {
    const lr = chosen.get(arm);
    if (lr === undefined) {
      md.push(`| ${arm.optimizer} | (tuning) | 0 | | | | | |`);
      continue;
    }
    const results: RunResult[] = [];
    let diverged = 0;
    const stepsBySeed: StepLine[][] = [];
    for (const seed of recipe.seeds) {
      const dir = join(outDir, runName("final", arm.optimizer, lr, seed));
      const r = readResult(dir);
      if (r && !r.diverged) {
        results.push(r);
        if (!historiesBySeed.has(arm.optimizer)) historiesBySeed.set(arm.optimizer, new Map());
        historiesBySeed.get(arm.optimizer)!.set(seed, r.history);
        stepsBySeed.push(readSteps(dir));
      } else if (!r) unfinished.push(runName("final", arm.optimizer, lr, seed));
      else diverged++;
      if (seed === recipe.seeds[0] && r) seed0Steps.set(arm.optimizer, readSteps(dir));
    }
    const stat = (f: (r: RunResult) => number) => meanStd(results.map(f));
    md.push(`| ${arm.optimizer} | ${lr} | ${results.length}${diverged ? ` (+${diverged} diverged)` : ""} | ${fmt(stat((r) => r.cleanTrainAccuracy!), pct)} | ${fmt(stat((r) => r.cleanTrainLoss!), (v) => v.toFixed(4), 4)} | ` +
      `${fmt(stat((r) => r.evalAccuracy), pct)} | ${fmt(stat((r) => r.evalLoss), (v) => v.toFixed(4), 4)} | ${fmt(stat((r) => r.history[r.history.length - 1].trainLoss), (v) => v.toFixed(4), 4)} |`);
    if (results.length > 0) {
      curves.push({ name: `${arm.optimizer} (lr ${lr}, ${results.length} seed${results.length > 1 ? "s" : ""})`, history: meanHistory(results.map((r) => r.history)) });
      const length = Math.min(...stepsBySeed.map((s) => s.length));
      lossSeries.push({
        name: arm.optimizer, colour: COLOURS[(curves.length - 1) % COLOURS.length], // the colour of its curves (renderCurves colours by index)
        points: Array.from({ length }, (_, i) => [stepsBySeed[0][i].step, stepsBySeed.reduce((a, s) => a + s[i].loss, 0) / stepsBySeed.length] as const),
      });
    }
  }
  for (const [title, key, digits] of [["running train loss", "trainLoss", 4], ["test accuracy %", "testAccuracy", 2]] as const) {
    if (curves.length === 0) break;
    const epochs = Math.max(...curves.map((c) => c.history.length));
    md.push("", `Learning curves, ${title} after each epoch (mean over the seeds):`, "");
    md.push(`| optimiser | ${Array.from({ length: epochs }, (_, e) => e + 1).join(" | ")} |`, `|---|${"---|".repeat(epochs)}`);
    for (const c of curves) {
      const value = (r: EpochRecord) => (key === "testAccuracy" ? 100 * r[key] : r[key]).toFixed(digits);
      md.push(`| ${c.name} | ${c.history.map(value).join(" | ")} |`);
    }
  }
  md.push(...differencesToSgd(historiesBySeed));
  const plots = new Map<string, string>();
  if (curves.length > 0) plots.set(`${docs}-curves.svg`, renderCurves(curves));
  if (lossSeries.length > 0) {
    plots.set(`${docs}-loss.svg`, renderLines(lossSeries, { title: "training loss of the batch (mean over seeds)", xLabel: "step", yLabel: "cross-entropy", logY: true }));
  }
  for (const name of ["scale-amended", "lars", "lamb"]) {
    const steps = seed0Steps.get(name);
    if (steps && steps.length > 0) {
      plots.set(`${docs}-rates-${name}.svg`, ratesPlot(steps, layerWeights(recipe), `${name}: per-layer effective rate, seed ${recipe.seeds[0]}`));
    }
  }
  md.push("", unfinished.length ? `Unfinished: ${unfinished.join(", ")}.` : "Every run has finished.", "");
  md.push(`Plots: ${[...plots.keys()].join(", ") || "none yet"}.`, "");
  await writeAtomic(join(outDir, "report.md"), md.join("\n"));
  for (const [path, svg] of plots) await writeAtomic(path, svg);
  process.stdout.write(md.join("\n"));
  log(`report: ${unfinished.length} run(s) unfinished; report.md in ${outDir}, ${plots.size} plot(s)`);
}
