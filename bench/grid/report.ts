/**
 * The grid's report, from whatever runs have finished: per row (model at a width) and α, the
 * mean ± std over seeds of every figure; each α's difference to the baseline (α = 1) paired
 * by seed, with its standard error; how much the baseline still moved over its last quarter
 * of epochs (has it flattened?); which runs diverged (left out of every figure: their numbers
 * are not finite); and which runs have not finished and where they stand.
 * Plots: the curves of each row with the α overlaid (means over seeds), and the gain plot.
 *
 * Reads only the runs' files (result.json, checkpoint metadata, claims), so it works on a
 * grid in progress, on a finished one, and on the exported copy of the results.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../../src/mod.ts";
import { liveOwner } from "./claim.ts";
import { renderGainPlot, type GainPoint } from "./gain_plot.ts";
import { CHECKPOINT_FILE, type DivergedResult, type FinalFigures, RESULT_FILE, type RunResult } from "./run.ts";
import {
  assertSameSettings, type GridSpec, orderedRuns, type Row, rowKey, rowLabel, type RunSpec, runIdentity, trainConfig,
} from "./spec.ts";
import { type Difference, meanStd, pairedDifference } from "./stats.ts";

export interface Report {
  markdown: string;
  /** SVG files by name. */
  plots: Map<string, string>;
  finished: number;
  total: number;
}

/** A run's result, checked to belong to this grid (the dataset's normalisation is taken as saved). */
export function readResult(spec: GridSpec, outDir: string, run: RunSpec): RunResult | DivergedResult | null {
  const path = join(outDir, run.name, RESULT_FILE);
  if (!existsSync(path)) return null;
  // JSON writes a diverged run's NaN as null: read it back as NaN, never as 0.
  const result = JSON.parse(readFileSync(path, "utf8"), (_, v) => (v === null ? NaN : v)) as RunResult | DivergedResult;
  const { mean, std } = result.config.train;
  assertSameSettings(path, result.config, runIdentity(spec, run, trainConfig(spec, run, mean, std)));
  return result;
}

/** Where an unfinished run stands: its last checkpoint and whether a live process holds it. */
function status(outDir: string, run: RunSpec): string {
  const dir = join(outDir, run.name);
  const checkpoint = join(dir, CHECKPOINT_FILE);
  const epochs = existsSync(checkpoint)
    ? JSON.parse(rg.io.readSafetensorsMetadata(new Uint8Array(readFileSync(checkpoint)), checkpoint).position).epoch as number
    : 0;
  const owner = liveOwner(dir);
  const where = epochs > 0 ? `after epoch ${epochs} of ${run.row.epochs}` : "no epoch done";
  return owner ? `${where}, being trained (pid ${owner.pid})` : epochs > 0 ? `${where}, stopped (no live process holds it)` : "not started";
}

type Figure = { key: keyof FinalFigures; label: string; scale: number; digits: number };

const FIGURES: Figure[] = [
  { key: "trainRunningAccuracy", label: "train acc % (running, augmented)", scale: 100, digits: 2 },
  { key: "cleanTrainAccuracy", label: "clean train acc %", scale: 100, digits: 2 },
  { key: "testAccuracy", label: "test acc %", scale: 100, digits: 2 },
  { key: "cleanTrainLoss", label: "clean train CE", scale: 1, digits: 4 },
  { key: "testLoss", label: "test CE", scale: 1, digits: 4 },
  { key: "testLogitNorm", label: "test logit norm", scale: 1, digits: 2 },
  { key: "zeroedFilters", label: "zeroed filters", scale: 1, digits: 1 },
  { key: "smallestFilterRatio", label: "smallest filter / median", scale: 1, digits: 3 },
];

const fixed = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const signed = (v: number, digits: number) => (v > 0 ? "+" : "") + fixed(v, digits);
const alphaLabel = (alpha: number) => (alpha === 1 ? "1 (baseline)" : String(alpha));

function differenceCell(d: Difference, digits: number): string {
  if (d.n === 0) return "–";
  const z = d.mean / d.se;
  return `${signed(d.mean, digits)} ± ${fixed(d.se, digits)}${Number.isFinite(z) ? ` (${signed(z, 1)})` : ""}`;
}

/** Means over seeds of each epoch's curve figures, for one (row, α). */
function meanCurve(results: readonly RunResult[]): rg.io.CurvePoint[] {
  return results[0].history.map((_, e) => {
    const avg = (key: "trainLoss" | "testLoss" | "trainAccuracy" | "testAccuracy") =>
      results.reduce((a, r) => a + r.history[e][key], 0) / results.length;
    return { epoch: e + 1, trainLoss: avg("trainLoss"), testLoss: avg("testLoss"), trainAccuracy: avg("trainAccuracy"), testAccuracy: avg("testAccuracy") };
  });
}

export function buildReport(spec: GridSpec, outDir: string, command: string): Report {
  const runs = orderedRuns(spec);
  const results = new Map<string, RunResult>();
  const unfinished: string[] = [];
  const diverged: string[] = [];
  for (const run of runs) {
    const result = readResult(spec, outDir, run);
    if (!result) unfinished.push(`- ${run.name}: ${status(outDir, run)}`);
    else if (result.diverged) {
      const { step, epoch, lastFiniteLoss } = result.diverged;
      diverged.push(`- ${run.name}: diverged at step ${step} (epoch ${epoch} of ${run.row.epochs}); the last finite training loss was ${lastFiniteLoss}`);
    } else results.set(run.name, result);
  }
  const runsOf = (row: Row, alpha: number) =>
    runs.filter((r) => r.row === row && r.alpha === alpha && results.has(r.name)).map((r) => ({ seed: r.seed, result: results.get(r.name)! }));
  const bySeed = (row: Row, alpha: number, key: keyof FinalFigures, scale: number) =>
    new Map(runsOf(row, alpha).map(({ seed, result }) => [seed, result.final[key] * scale]));

  const { recipe } = spec;
  const lines = [
    `# PowerGrad grid: ${results.size + diverged.length} of ${runs.length} runs finished${diverged.length ? `, ${diverged.length} of them diverged` : ""}`,
    "",
    `Recipe: ${recipe.dataset}, the first ${recipe.subset} training and ${recipe.testSubset} test images, batch ${recipe.batchSize}, ` +
      `SGD with Nesterov 0.9, weight decay 5e-4, peak lr ${recipe.lr}, one warm-up epoch then cosine to zero, augmentation ${recipe.augment}. ` +
      `α ∈ {${spec.alphas.join(", ")}}, seeds {${spec.seeds.join(", ")}}. Read back from the runs' files.`,
    "",
    `Command: \`${command}\``,
    "",
    "## Figures at the end of training (mean ± std over seeds)",
    "",
    `| row | α | seeds | ${FIGURES.map((f) => f.label).join(" | ")} |`,
    `|---|---|---|${FIGURES.map(() => "---").join("|")}|`,
  ];
  for (const row of spec.rows) {
    for (const alpha of spec.alphas) {
      const group = runsOf(row, alpha);
      if (group.length === 0) continue;
      const cells = FIGURES.map((f) => {
        const { mean, std } = meanStd(group.map(({ result }) => result.final[f.key] * f.scale));
        return `${fixed(mean, f.digits)} ± ${fixed(std, f.digits)}${f.key === "zeroedFilters" ? ` / ${group[0].result.final.filters}` : ""}`;
      });
      lines.push(`| ${rowLabel(row)} | ${alphaLabel(alpha)} | ${group.map((g) => g.seed).join(",")} | ${cells.join(" | ")} |`);
    }
  }
  lines.push(
    "",
    "## Difference to the baseline (α = 1), paired by seed: Δ ± standard error (Δ / SE)",
    "",
    `| row | α | pairs | ${FIGURES.map((f) => `Δ ${f.label}`).join(" | ")} |`,
    `|---|---|---|${FIGURES.map(() => "---").join("|")}|`,
  );
  const gains: GainPoint[] = [];
  for (const row of spec.rows) {
    const baselineAccuracy = bySeed(row, 1, "cleanTrainAccuracy", 100);
    for (const alpha of spec.alphas.filter((a) => a !== 1)) {
      const diffs = FIGURES.map((f) => pairedDifference(bySeed(row, 1, f.key, f.scale), bySeed(row, alpha, f.key, f.scale)));
      if (diffs[0].n === 0) continue;
      lines.push(`| ${rowLabel(row)} | ${alpha} | ${diffs[0].n} | ${diffs.map((d, i) => differenceCell(d, FIGURES[i].digits)).join(" | ")} |`);
      gains.push({
        row: rowLabel(row), x: meanStd([...baselineAccuracy.values()]).mean, alpha,
        values: [diffs[1], diffs[2]],
      });
    }
  }
  lines.push(
    "",
    "## Has the baseline flattened? Its mean curves at three quarters of the epochs and at the end",
    "",
    "| row | seeds | epoch | test acc % | train acc % (running) | epoch | test acc % | train acc % (running) |",
    "|---|---|---|---|---|---|---|---|",
  );
  const plots = new Map<string, string>();
  for (const row of spec.rows) {
    const curves = spec.alphas.map((alpha) => ({ alpha, group: runsOf(row, alpha) })).filter(({ group }) => group.length > 0);
    if (curves.length === 0) continue;
    plots.set(`curves-${rowKey(row)}.svg`, rg.io.renderCurves(curves.map(({ alpha, group }) => ({
      name: `${rowLabel(row)} α=${alphaLabel(alpha)} (mean of ${group.length} seed${group.length > 1 ? "s" : ""})`,
      history: meanCurve(group.map((g) => g.result)),
    }))));
    const baseline = curves.find((c) => c.alpha === 1);
    if (!baseline) continue;
    const curve = meanCurve(baseline.group.map((g) => g.result));
    const at = (p: rg.io.CurvePoint) => `${p.epoch} | ${fixed(100 * p.testAccuracy, 2)} | ${fixed(100 * p.trainAccuracy, 2)}`;
    lines.push(`| ${rowLabel(row)} | ${baseline.group.length} | ${at(curve[Math.max(0, Math.round(0.75 * curve.length) - 1)])} | ${at(curve[curve.length - 1])} |`);
  }
  if (gains.length > 0) plots.set("gain.svg", renderGainPlot(gains, ["Δ clean train accuracy (points)", "Δ test accuracy (points)"]));
  if (diverged.length > 0) lines.push("", `## Diverged (${diverged.length}; left out of every figure above)`, "", ...diverged);
  lines.push("", unfinished.length === 0 ? "Every run has finished." : `## Not finished (${unfinished.length})\n\n${unfinished.join("\n")}`, "");
  return { markdown: lines.join("\n"), plots, finished: results.size + diverged.length, total: runs.length };
}
