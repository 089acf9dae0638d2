/**
 * The PowerGrad paper's own measures (Das et al., arXiv 2111.12495) as figures of a grid's
 * finished runs, per row: the test logits' mean L2 norm against training (per epoch) and
 * against α, which the paper says grows as α falls; and, for networks without BatchNorm, the
 * final per-filter norms, sorted, per layer and α, with the number of filters that "zero out"
 * at a few thresholds relative to their layer's median (the paper: fewer with PowerGrad).
 * Means over seeds with every seed shown, since grids this small have three seeds at most.
 *
 * Reads result.json through the report's reader (so a run made with other settings is
 * refused, and diverged runs are left out), works on a grid in progress and on its export.
 */
import * as rg from "../../src/mod.ts";
import { COLOURS, label, type Line, type Panel, renderFigure } from "../../src/io/svg_chart.ts";
import { readResult } from "./report.ts";
import type { RunResult } from "./run.ts";
import { type GridSpec, orderedRuns, type Row, rowKey, rowLabel } from "./spec.ts";
import { meanStd } from "./stats.ts";

/** Fractions of a layer's median norm below which a filter counts as zeroed (the grid's own is the first). */
export const ZEROED_THRESHOLDS = [rg.analysis.ZEROED_FRACTION, 0.1, 0.2];

export interface Figures {
  markdown: string;
  /** SVG files by name. */
  plots: Map<string, string>;
}

type Arm = { alpha: number; runs: { seed: number; result: RunResult }[] };

const colourOf = (alphas: readonly number[], alpha: number) => COLOURS[alphas.indexOf(alpha) % COLOURS.length];
const fixed = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const cell = (values: readonly number[], digits: number) => {
  const { mean, std } = meanStd(values);
  return values.length > 1 ? `${fixed(mean, digits)} ± ${fixed(std, digits)}` : fixed(mean, digits);
};

/**
 * Ticks of a log axis over `lines`, denser the narrower their span: the chart kit's own log
 * ticks are powers of ten only, and a layer's filter norms often lie within a factor of three.
 */
function logTicks(lines: readonly Line[]): { value: number; text: string }[] {
  const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((v) => v > 0 && Number.isFinite(v));
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const steps = hi / lo < 3 ? [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8] : hi / lo < 100 ? [1, 2, 5] : [1];
  const ticks: { value: number; text: string }[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of steps) ticks.push({ value: Number((m * 10 ** e).toPrecision(6)), text: label(Number((m * 10 ** e).toPrecision(6))) });
  }
  return ticks;
}

/** Filters of one run below `fraction` of their layer's median norm, over all its layers. */
function zeroedAt(result: RunResult, fraction: number): number {
  return Object.values(result.filterNorms).reduce((n, norms) => n + rg.analysis.countZeroed(norms, fraction), 0);
}

function logitFigure(row: Row, arms: readonly Arm[], alphas: readonly number[]): string {
  const epochs: Line[] = [];
  for (const { alpha, runs } of arms) {
    const colour = colourOf(alphas, alpha);
    const curves = runs.map(({ result }) => result.history.map((h, e) => [e + 1, h.measures!.testLogitNorm] as const));
    for (const points of curves) epochs.push({ points, colour, width: 0.8, opacity: 0.45 });
    const length = Math.min(...curves.map((c) => c.length));
    epochs.push({ points: Array.from({ length }, (_, e) => [e + 1, curves.reduce((a, c) => a + c[e][1], 0) / curves.length] as const), colour });
  }
  const final = (arm: Arm) => arm.runs.map(({ result }) => result.final.testLogitNorm);
  const byAlpha: Line[] = arms.flatMap((arm) => final(arm).map((v) => ({ points: [[arm.alpha, v] as const], colour: colourOf(alphas, arm.alpha) })));
  byAlpha.push({ points: arms.map((arm) => [arm.alpha, meanStd(final(arm)).mean] as const), colour: "#333" });
  const baseline = arms.find((a) => a.alpha === 1);
  if (baseline) {
    const norm = meanStd(final(baseline)).mean;
    const grid = arms.map((a) => a.alpha).sort((a, b) => a - b);
    byAlpha.push({ points: grid.map((a) => [a, norm / a] as const), colour: "#999", dash: "5 4", width: 1.2 });
  }
  const panels: Panel[] = [
    { title: "test logit norm during training", xLabel: "epoch", lines: epochs, logY: true, yTicks: logTicks(epochs) },
    { title: "test logit norm at the end", xLabel: "PowerGrad α", lines: byAlpha, logY: true, yTicks: logTicks(byAlpha) },
  ];
  return renderFigure(panels, {
    columns: 2, title: `${rowLabel(row)}: mean ‖z‖₂ of the test logits`,
    legend: [
      ...arms.map((a) => ({ text: `α = ${a.alpha} (${a.runs.length} seed${a.runs.length > 1 ? "s" : ""}; thin: each seed)`, colour: colourOf(alphas, a.alpha) })),
      { text: "mean over seeds", colour: "#333" },
      ...(baseline ? [{ text: "baseline's norm / α", colour: "#999", dash: "5 4" }] : []),
    ],
  });
}

function filterFigure(row: Row, arms: readonly Arm[], alphas: readonly number[]): string {
  const layers = Object.keys(arms[0].runs[0].result.filterNorms);
  const panels: Panel[] = layers.map((layer) => {
    const lines = arms.flatMap(({ alpha, runs }) => runs.map(({ result }) => {
      const norms = [...result.filterNorms[layer]].sort((a, b) => a - b);
      return { points: norms.map((v, i) => [norms.length > 1 ? i / (norms.length - 1) : 0, v] as const), colour: colourOf(alphas, alpha), width: 1.1 };
    }));
    return { title: layer, xLabel: "filters, sorted (fraction of the layer)", logY: true, yTicks: logTicks(lines), lines };
  });
  // Greys, so the thresholds are not read as α.
  const shades = ["#000", "#666", "#aaa"];
  const dashes = [undefined, "6 3", "2 3"];
  panels.push({
    title: "filters below a fraction of their layer's median", xLabel: "PowerGrad α",
    lines: ZEROED_THRESHOLDS.flatMap((fraction, t) => [
      ...arms.flatMap((arm) => arm.runs.map(({ result }) => ({ points: [[arm.alpha, zeroedAt(result, fraction)] as const], colour: shades[t] }))),
      { points: arms.map((arm) => [arm.alpha, meanStd(arm.runs.map(({ result }) => zeroedAt(result, fraction))).mean] as const), colour: shades[t], dash: dashes[t] },
    ]),
  });
  const filters = layers.reduce((n, l) => n + arms[0].runs[0].result.filterNorms[l].length, 0);
  return renderFigure(panels, {
    columns: 4, title: `${rowLabel(row)}: final L2 norm of every filter, per layer (log scale)`,
    legend: [
      ...arms.map((a) => ({ text: `α = ${a.alpha} (one line per seed)`, colour: colourOf(alphas, a.alpha) })),
      ...ZEROED_THRESHOLDS.map((f, t) => ({ text: `last panel: below ${f} × median (of ${filters})`, colour: shades[t], dash: dashes[t] })),
    ],
  });
}

/** The figures of every row with finished runs, and a table of what they show. */
export function buildFigures(spec: GridSpec, outDir: string): Figures {
  const runs = orderedRuns(spec);
  const plots = new Map<string, string>();
  const lines = [
    `| row | α | seeds | test acc % | test logit norm | norm × α | ${ZEROED_THRESHOLDS.map((f) => `filters < ${f} × median`).join(" | ")} | smallest filter / median |`,
    `|---|---|---|---|---|---|${ZEROED_THRESHOLDS.map(() => "---|").join("")}---|`,
  ];
  for (const row of spec.rows) {
    const arms: Arm[] = spec.alphas.map((alpha) => ({
      alpha,
      runs: runs.filter((r) => r.row === row && r.alpha === alpha).flatMap((r) => {
        const result = readResult(spec, outDir, r);
        return result && !result.diverged ? [{ seed: r.seed, result }] : [];
      }),
    })).filter((arm) => arm.runs.length > 0);
    if (arms.length === 0) continue;
    plots.set(`logits-${rowKey(row)}.svg`, logitFigure(row, arms, spec.alphas));
    const withFilters = Object.keys(arms[0].runs[0].result.filterNorms).length > 0;
    if (withFilters) plots.set(`filters-${rowKey(row)}.svg`, filterFigure(row, arms, spec.alphas));
    for (const { alpha, runs: group } of arms) {
      const of = (f: (r: RunResult) => number) => group.map(({ result }) => f(result));
      const filterCells = withFilters
        ? [...ZEROED_THRESHOLDS.map((fraction) => cell(of((r) => zeroedAt(r, fraction)), 1)), cell(of((r) => r.final.smallestFilterRatio), 3)]
        : ZEROED_THRESHOLDS.map(() => "–").concat("–");
      lines.push(`| ${rowLabel(row)} | ${alpha} | ${group.map((g) => g.seed).join(",")} | ${cell(of((r) => 100 * r.final.testAccuracy), 2)} | ` +
        `${cell(of((r) => r.final.testLogitNorm), 2)} | ${cell(of((r) => alpha * r.final.testLogitNorm), 2)} | ${filterCells.join(" | ")} |`);
    }
  }
  return { markdown: lines.join("\n") + "\n", plots };
}
