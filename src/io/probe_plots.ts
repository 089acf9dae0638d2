/**
 * Figures of probe records (probes.jsonl, src/analysis/probes.ts) in the style of the papers'
 * figures: Santurkar et al.'s bands over training steps (the loss and the gradient change along
 * the gradient, from the smallest to the largest step size), activation quantile bands and
 * histograms over time, internal covariate shift per layer, with runs overlaid (BatchNorm
 * against none); the PowerGrad paper's logit statistics and per-filter norms; curvature and
 * per-layer statistics. Runs whose names differ only by a seed suffix ("-s0", "-seed1") form one
 * group: one colour and one legend entry, every seed drawn.
 *
 * Records are read loosely (a field that is missing or not a number leaves a gap), so a log
 * written by an older version still draws what it has.
 */
import { COLOURS, type Band, type Line, type Panel, type Point, renderFigure } from "./svg_chart.ts";

/** A probe record as read back from probes.jsonl. */
export type ProbeLogRecord = Record<string, unknown> & { probe?: unknown; step?: unknown };

export interface ProbeRun {
  name: string;
  records: readonly ProbeLogRecord[];
}

interface Group {
  name: string;
  colour: string;
  runs: ProbeRun[];
}

const num = (v: unknown): number => (typeof v === "number" ? v : NaN);
const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(num) : []);
const objects = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter((o) => o && typeof o === "object") : []);

/** The run's records of one probe, by step. */
function recordsOf(run: ProbeRun, probe: string): ProbeLogRecord[] {
  return run.records.filter((r) => r.probe === probe && typeof r.step === "number").sort((a, b) => num(a.step) - num(b.step));
}

/** Runs grouped by name without a seed suffix, in order of first appearance. */
export function groupRuns(runs: readonly ProbeRun[]): Group[] {
  const groups: Group[] = [];
  for (const run of runs) {
    const name = run.name.replace(/-s(eed)?\d+$/, "");
    let group = groups.find((g) => g.name === name);
    if (!group) groups.push(group = { name, colour: COLOURS[groups.length % COLOURS.length], runs: [] });
    group.runs.push(run);
  }
  return groups;
}

const legendOf = (groups: readonly Group[]) => groups.map((g) => ({ text: g.runs.length > 1 ? `${g.name} (${g.runs.length} runs)` : g.name, colour: g.colour }));

/** `count` indices spread evenly over 0..n−1, first and last included. */
function spread(n: number, count: number): number[] {
  if (n <= count) return [...Array(n).keys()];
  return [...new Set(Array.from({ length: count }, (_, i) => Math.round((i * (n - 1)) / (count - 1))))];
}

/** A line per run of `value(record)` against step. */
function linesOf(groups: readonly Group[], probe: string, value: (r: ProbeLogRecord) => number, extra: Partial<Line> = {}): Line[] {
  return groups.flatMap((g) => g.runs.map((run) => ({
    points: recordsOf(run, probe).map((r) => [num(r.step), value(r)] as Point), colour: g.colour, ...extra,
  })));
}

/** A band per run between `lower(record)` and `upper(record)` against step. */
function bandsOf(groups: readonly Group[], probe: string, lower: (r: ProbeLogRecord) => number, upper: (r: ProbeLogRecord) => number, opacity = 0.25): Band[] {
  return groups.flatMap((g) => g.runs.map((run) => {
    const records = recordsOf(run, probe);
    return {
      lower: records.map((r) => [num(r.step), lower(r)] as Point), upper: records.map((r) => [num(r.step), upper(r)] as Point),
      colour: g.colour, opacity,
    };
  }));
}

const min = (v: number[]) => (v.length ? Math.min(...v) : NaN);
const max = (v: number[]) => (v.length ? Math.max(...v) : NaN);

/** Santurkar et al.'s Fig. 4: loss variation and gradient predictiveness as bands, effective β-smoothness as a line. */
export function landscapeFigure(runs: readonly ProbeRun[]): string {
  const groups = groupRuns(runs);
  const losses = (r: ProbeLogRecord) => nums(r.losses), changes = (r: ProbeLogRecord) => nums(r.gradientChanges);
  return renderFigure([
    { title: "loss landscape (L along the gradient)", xLabel: "step", bands: bandsOf(groups, "landscape", (r) => min(losses(r)), (r) => max(losses(r))) },
    { title: "gradient predictiveness (‖g − g′‖₂)", xLabel: "step", bands: bandsOf(groups, "landscape", (r) => min(changes(r)), (r) => max(changes(r))) },
    { title: "effective β-smoothness", xLabel: "step", lines: linesOf(groups, "landscape", (r) => num(r.effectiveBetaSmoothness)) },
  ], { columns: 3, legend: legendOf(groups), note: "bands: from the smallest to the largest value over the step sizes η′ ∈ [η/2, 4η] at each probed step" });
}

/** Internal covariate shift of chosen layers: ‖G − G′‖₂ (top row) and cos(G, G′) (bottom row). */
export function icsFigure(runs: readonly ProbeRun[], maxLayers = 4): string {
  const groups = groupRuns(runs);
  const first = recordsOf(groups[0].runs[0], "ics")[0];
  const names = objects(first?.layers).map((l) => String(l.name));
  // The first layer has nothing below it (its shift is 0 by definition): start at the second.
  const chosen = spread(names.length - 1, maxLayers).map((i) => i + 1);
  const layerValue = (i: number, key: string) => (r: ProbeLogRecord) => num(objects(r.layers)[i]?.[key]);
  const panels: Panel[] = [
    ...chosen.map((i) => ({ title: `layer #${i + 1} (${names[i]}): ‖G − G′‖₂`, xLabel: "step", lines: linesOf(groups, "ics", layerValue(i, "shift")) })),
    ...chosen.map((i) => ({ title: `layer #${i + 1} (${names[i]}): cos(G, G′)`, xLabel: "step", lines: linesOf(groups, "ics", layerValue(i, "cosine")) })),
  ];
  return renderFigure(panels, { columns: chosen.length, legend: legendOf(groups), note: "layers numbered from the input; G′: the layer's gradient after the layers below took the step's update" });
}

/**
 * How many activation layers every group's first run has: the k-th layer is then drawn for each
 * group (a network without BatchNorm summarises its hidden linear layer too, one layer more).
 */
function commonActivationLayers(groups: readonly Group[]): number {
  return Math.min(...groups.map((g) => objects(recordsOf(g.runs[0], "activations")[0]?.layers).length));
}

/** Activation quantile bands (2–98 %, 10–90 %, 25–75 %, median) over steps: layers as rows, groups as columns. */
export function activationFigure(runs: readonly ProbeRun[], maxLayers = 3): string {
  const groups = groupRuns(runs);
  const chosen = spread(commonActivationLayers(groups), maxLayers);
  const panels: Panel[] = [];
  for (const i of chosen) {
    for (const g of groups) {
      const records = recordsOf(g.runs[0], "activations");
      const layer = (r: ProbeLogRecord) => objects(r.layers)[i];
      const q = (k: number) => (r: ProbeLogRecord) => nums(layer(r)?.quantiles)[k];
      const series = (k: number) => records.map((r) => [num(r.step), q(k)(r)] as Point);
      panels.push({
        title: `${g.name}: layer #${i + 1} (${String(layer(records[0] ?? {})?.name ?? "?")})`, xLabel: "step",
        bands: [[0, 6, 0.15], [1, 5, 0.25], [2, 4, 0.4]].map(([lo, hi, opacity]) => ({ lower: series(lo), upper: series(hi), colour: g.colour, opacity })),
        lines: [{ points: series(3), colour: g.colour, width: 1.5 }],
      });
    }
  }
  return renderFigure(panels, { columns: groups.length, legend: legendOf(groups), note: "bands: the 2–98 %, 10–90 % and 25–75 % quantiles of the layer's activations; line: the median (first run of each group)" });
}

/** Histograms over time (a ridge plot): groups as rows, chosen layers as columns. */
export function histogramFigure(runs: readonly ProbeRun[], maxLayers = 3, snapshots = 8): string {
  const groups = groupRuns(runs);
  const layers = spread(commonActivationLayers(groups), maxLayers);
  const panels: Panel[] = [];
  for (const g of groups) {
    const records = recordsOf(g.runs[0], "activations");
    const picked = spread(records.length, snapshots).map((k) => records[k]);
    for (const i of layers) {
      const lines: Line[] = [];
      const yTicks: { value: number; text: string }[] = [];
      picked.forEach((r, k) => {
        const layer = objects(r.layers)[i] ?? {};
        const counts = nums(layer.histogram), lo = num(layer.min), hi = num(layer.max);
        const peak = max(counts) || 1, width = (hi - lo) / counts.length;
        lines.push({ points: counts.map((c, b) => [lo + (b + 0.5) * width, k + 0.9 * (c / peak)] as Point), colour: g.colour, width: 1.3 });
        yTicks.push({ value: k, text: `step ${num(r.step)}` });
      });
      panels.push({ title: `${g.name}: layer #${i + 1} (${String(objects(picked[0]?.layers)[i]?.name ?? "?")})`, xLabel: "activation", lines, yTicks });
    }
  }
  return renderFigure(panels, { columns: Math.min(3, panels.length), legend: legendOf(groups), note: "each curve: the histogram of the layer's activations at one step (scaled to its peak), later steps higher up" });
}

/** Top Hessian eigenvalue and the Hessian trace (band: ± one standard error of Hutchinson's estimate). */
export function curvatureFigure(runs: readonly ProbeRun[]): string {
  const groups = groupRuns(runs);
  return renderFigure([
    { title: "top Hessian eigenvalue", xLabel: "step", lines: linesOf(groups, "curvature", (r) => num(r.topEigenvalue)) },
    {
      title: "Hessian trace (Hutchinson)", xLabel: "step", lines: linesOf(groups, "curvature", (r) => num(r.trace)),
      bands: bandsOf(groups, "curvature", (r) => num(r.trace) - num(r.traceStandardError), (r) => num(r.trace) + num(r.traceStandardError)),
    },
  ], { columns: 2, legend: legendOf(groups), note: "on the probed step's batch; band: ± one standard error" });
}

/** The PowerGrad authors' logit statistics of each probed batch. */
export function logitFigure(runs: readonly ProbeRun[]): string {
  const groups = groupRuns(runs);
  const panel = (title: string, key: string): Panel => ({ title, xLabel: "step", lines: linesOf(groups, "logits", (r) => num(r[key])) });
  return renderFigure([panel("mean ‖z‖₂", "norm"), panel("mean |mean_c z|", "absMean"), panel("mean |max_c z|", "absMax"), panel("mean var_c z", "variance")],
    { columns: 4, legend: legendOf(groups), note: "logits z of each probed training batch at the step's weights (training mode)" });
}

/** Per-filter L2 norms of chosen layers (one thin line per filter; first run of each group) and the zeroed count of every run. */
export function filterFigure(runs: readonly ProbeRun[], maxLayers = 3): string {
  const groups = groupRuns(runs);
  const panels: Panel[] = [];
  for (const g of groups) {
    const records = recordsOf(g.runs[0], "filters");
    const layerCount = objects(records[0]?.layers).length;
    for (const i of spread(layerCount, maxLayers)) {
      const filters = nums(objects(records[0]?.layers)[i]?.norms).length;
      const lines = Array.from({ length: filters }, (_, f) => ({
        points: records.map((r) => [num(r.step), nums(objects(r.layers)[i]?.norms)[f]] as Point), colour: g.colour, width: 1, opacity: 0.6,
      }));
      panels.push({ title: `${g.name}: ${String(objects(records[0]?.layers)[i]?.name ?? "?")} (${filters} filters)`, xLabel: "step", lines, logY: true });
    }
  }
  panels.push({ title: "zeroed filters (all layers)", xLabel: "step", lines: linesOf(groups, "filters", (r) => num(r.zeroed)) });
  return renderFigure(panels, { columns: Math.min(4, panels.length), legend: legendOf(groups), note: "filter: one output unit's weights; zeroed: norm below 1/20 of its layer's median" });
}

/** Per-layer gradient norms and update-to-weight ratios of every weight tensor (first run of each group). */
export function layerStatsFigure(runs: readonly ProbeRun[]): string {
  const groups = groupRuns(runs);
  const panels: Panel[] = [];
  for (const key of ["gradNorm", "updateRatio"] as const) {
    for (const g of groups) {
      const records = recordsOf(g.runs[0], "layers");
      const names = objects(records[0]?.layers).map((l) => String(l.name)).filter((n) => n.endsWith("weight"));
      const lines = names.map((name, k) => ({
        points: records.map((r) => [num(r.step), num(objects(r.layers).find((l) => l.name === name)?.[key])] as Point),
        colour: g.colour, width: 1.2, opacity: 0.3 + 0.7 * (k / Math.max(1, names.length - 1)),
      }));
      panels.push({ title: `${g.name}: ${key === "gradNorm" ? "‖∇L‖₂" : "‖ΔW‖₂ / ‖W‖₂"} per weight`, xLabel: "step", lines, logY: true });
    }
  }
  return renderFigure(panels, { columns: groups.length, legend: legendOf(groups), note: "one line per weight tensor, darker deeper" });
}

/** Every figure the runs' records allow, by file name. */
export function probeFigures(runs: readonly ProbeRun[]): Map<string, string> {
  const has = (probe: string) => runs.some((run) => recordsOf(run, probe).length > 0);
  const figures = new Map<string, string>();
  const usable = (probe: string) => runs.filter((run) => recordsOf(run, probe).length > 0);
  if (has("landscape")) figures.set("landscape.svg", landscapeFigure(usable("landscape")));
  if (has("ics")) figures.set("ics.svg", icsFigure(usable("ics")));
  if (has("activations")) {
    figures.set("activations.svg", activationFigure(usable("activations")));
    figures.set("histograms.svg", histogramFigure(usable("activations")));
  }
  if (has("curvature")) figures.set("curvature.svg", curvatureFigure(usable("curvature")));
  if (has("logits")) figures.set("logits.svg", logitFigure(usable("logits")));
  if (has("filters")) figures.set("filters.svg", filterFigure(usable("filters")));
  if (has("layers")) figures.set("layers.svg", layerStatsFigure(usable("layers")));
  return figures;
}
