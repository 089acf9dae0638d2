/**
 * The figures of docs/variants.md, drawn from the experiments' committed records under
 * docs/data/variants/ (nothing is retrained): dithered backprop's per-layer sparsity and test
 * accuracy, pipelined backprop's curves per condition, the Bayesian initialisation's accuracy
 * per epoch against its controls, and the ZCA runs' gradient norm, loss and final accuracy.
 * Each curve is the mean over seeds with the seeds' range (min to max) shaded, or every seed
 * drawn, since three to five seeds are too few for a standard deviation to mean much.
 *
 *   deno run -A bench/variants_figures.ts        # writes docs/variants-figures/*.svg
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseRecord } from "../src/io/records.ts";
import { type Band, COLOURS, type Line, type Panel, type Point, renderFigure } from "../src/io/svg_chart.ts";
import { meanStd } from "./grid/stats.ts";

const DATA = "docs/data/variants";
const OUT = "docs/variants-figures";

interface EpochRecord {
  step: number;
  epoch: number;
  trainLoss: number;
  testAccuracy: number;
}

interface StepRecord {
  type: string;
  step: number;
  loss: number;
  gradNorm: number;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;
const percent = (v: number) => 100 * v;
/** The epoch records of one run of the pipelined or Bayesian experiment (docs/data/variants/<experiment>/<file>-s<seed>.json). */
const epochHistory = (experiment: string, file: string, seed: number) =>
  readJson<{ history: EpochRecord[] }>(join(DATA, experiment, `${file}-s${seed}.json`)).history;

/** The mean over seeds and a band from the smallest to the largest seed, for curves over the same x. */
function meanAndRange(curves: readonly (readonly Point[])[], colour: string): { line: Line; band: Band } {
  const xs = curves[0].map((p) => p[0]);
  const at = (i: number) => curves.map((c) => c[i][1]);
  return {
    line: { points: xs.map((x, i) => [x, meanStd(at(i)).mean] as const), colour },
    band: {
      lower: xs.map((x, i) => [x, Math.min(...at(i))] as const),
      upper: xs.map((x, i) => [x, Math.max(...at(i))] as const),
      colour,
      opacity: 0.15,
    },
  };
}

/** One mean line and range band per arm, each arm's curves being its seeds'. */
function curvesPanel(title: string, xLabel: string, arms: readonly { colour: string; dash?: string; curves: readonly (readonly Point[])[] }[]): Panel {
  const drawn = arms.map((arm) => ({ ...meanAndRange(arm.curves, arm.colour), dash: arm.dash }));
  return { title, xLabel, lines: drawn.map(({ line, dash }) => ({ ...line, dash })), bands: drawn.map(({ band }) => band) };
}

/** Categories 1 … n on the x axis, each seed a dot and the mean a short bar (the accuracy panels). */
function categoryPanel(title: string, arms: readonly { name: string; values: readonly number[]; colour: string }[]): Panel {
  const lines: Line[] = arms.flatMap((arm, i) => [
    ...arm.values.map((v) => ({ points: [[i + 1, v] as const], colour: arm.colour })),
    { points: [[i + 0.8, meanStd(arm.values).mean] as const, [i + 1.2, meanStd(arm.values).mean] as const], colour: arm.colour, width: 3 },
  ]);
  return {
    title, xLabel: "dots: one per seed; bar: mean over seeds", lines,
    xTicks: arms.map((arm, i) => ({ value: i + 1, text: arm.name })), xRange: [0.5, arms.length + 0.5],
  };
}

function ditherFigure(): string {
  const { runs } = readJson<{ runs: { condition: string; seed: number; testAccuracy: number; sparsity: Record<string, number> }[] }>(join(DATA, "dither.json"));
  const arms = [
    { condition: "baseline", name: "baseline", colour: "#333" },
    { condition: "std × 4", name: "Δ = 4·std(δ)", colour: COLOURS[0] },
    { condition: "maxabs × 0.5", name: "Δ = 0.5·max|δ|", colour: COLOURS[1] },
  ].map((arm) => ({ ...arm, runs: runs.filter((r) => r.condition === arm.condition) }));
  const layers = Object.keys(arms[1].runs[0].sparsity).filter((k) => k !== "dither.mean");
  const sparsity = curvesPanel("zeros in the dithered output gradient (%)", `${layers.length} layers in forward order (0: stem conv1)`,
    arms.slice(1).map((arm) => ({ colour: arm.colour, curves: arm.runs.map((r) => layers.map((l, i) => [i, percent(r.sparsity[l])] as const)) })));
  // The first layer of each stage and the classifier, so the layers can be told apart without a label each
  // (the stem's conv1 is layer 0, next to layer1's first and too close to label too).
  const stageStarts = layers.flatMap((l, i) => {
    const name = l.replace("dither.", "");
    return name === "fc" || name.endsWith(".0.conv1") ? [{ value: i, text: name.replace(".0.conv1", "") }] : [];
  });
  return renderFigure([
    { ...sparsity, xTicks: stageStarts },
    categoryPanel("test accuracy after 150 steps (%)", arms.map((a) => ({ name: a.name, values: a.runs.map((r) => percent(r.testAccuracy)), colour: a.colour }))),
  ], {
    columns: 2,
    title: "Dithered backprop: ResNet-20 ×0.25, Fashion-MNIST, 150 steps, seeds 0–2",
    legend: arms.map((a) => ({ text: a.name, colour: a.colour })),
    note: "left: mean over the 3 seeds of each layer's fraction of exact zeros over the 150 steps, shaded from the lowest to the highest seed",
  });
}

function pipelinedFigure(): string {
  const conditions = [
    { file: "sgd", name: "SGD, no pipeline", colour: "#333" },
    { file: "pipelined", name: "pipelined", colour: COLOURS[1] },
    { file: "sc", name: "+ SC", colour: COLOURS[0] },
    { file: "lwp", name: "+ LWP", colour: COLOURS[2] },
    { file: "sc+lwp", name: "+ SC + LWP", colour: COLOURS[4] },
  ];
  const panel = (title: string, value: (r: EpochRecord) => number, forward: boolean) =>
    curvesPanel(title, "training step (batch 8; evaluated after each of 3 epochs)", conditions.map((c) => {
      // SGD has no stale weights: its latest weights are its forward weights.
      const file = forward && c.file !== "sgd" ? `${c.file}-forward` : c.file;
      return { colour: c.colour, curves: [0, 1, 2].map((seed) => epochHistory("pipelined", file, seed).map((r) => [r.step, value(r)] as const)) };
    }));
  return renderFigure([
    panel("test accuracy, latest weights (%)", (r) => percent(r.testAccuracy), false),
    panel("test accuracy, forward weights (%)", (r) => percent(r.testAccuracy), true),
    panel("training loss, mean over the epoch", (r) => r.trainLoss, false),
  ], {
    columns: 3,
    title: "Pipelined backprop (simulated, 43 stages): ResNet-20 ×0.25, Fashion-MNIST, 600 steps, seeds 0–2",
    legend: conditions.map((c) => ({ text: c.name, colour: c.colour })),
    note: "lines: mean over the 3 seeds; shaded: lowest to highest seed; test accuracy on the first 2 000 test images",
  });
}

function bayesFigure(): string {
  const conditions = [
    { file: "default", name: "default init", colour: "#333" },
    { file: "bayesian", name: "Bayesian, M = 10", colour: COLOURS[0] },
    { file: "scaled-default", name: "default × 0.287 (control)", colour: COLOURS[4] },
  ];
  const panel = (title: string, value: (r: EpochRecord) => number) =>
    curvesPanel(title, "epoch", conditions.map((c) => ({
      colour: c.colour, dash: c.file === "scaled-default" ? "6 4" : undefined,
      curves: [0, 1, 2, 3, 4].map((seed) => epochHistory("bayes", c.file, seed).map((r) => [r.epoch, value(r)] as const)),
    })));
  return renderFigure([
    panel("test accuracy (%)", (r) => percent(r.testAccuracy)),
    panel("training loss, mean over the epoch", (r) => r.trainLoss),
  ], {
    columns: 2,
    title: "Bayesian initialisation: MLP 784-256-128-10, Fashion-MNIST, plain SGD lr 0.05, seeds 0–4",
    legend: conditions.map((c) => ({ text: c.name, colour: c.colour, dash: c.file === "scaled-default" ? "6 4" : undefined })),
    note: "lines: mean over the 5 seeds; shaded: lowest to highest seed (the Bayesian and control lines overlap)",
  });
}

function zcaFigure(): string {
  const arms = [
    { prefix: "bn", name: "BatchNorm", colour: "#333" },
    { prefix: "zca-pi", name: "ZCA, power iteration", colour: COLOURS[0] },
    { prefix: "zca-analytic", name: "ZCA, analytic", colour: COLOURS[1] },
  ];
  // The present code's runs: seeds 0-1 from the reruns with a step record every 10 steps, seed 2 from the first runs.
  const runDir = (prefix: string, seed: number) => join(DATA, seed < 2 ? "zca-rerun" : "zca", `${prefix}-s${seed}`);
  const records = (dir: string) => readFileSync(join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean)
    .map((line) => parseRecord(line) as StepRecord & EpochRecord);
  const steps = (dir: string) => records(dir).filter((r) => r.type === "step");
  const dashes = ["", "6 3", "2 3"];
  const perSeed = (value: (r: StepRecord) => number): Line[] => arms.flatMap((arm) => [0, 1, 2].map((seed) => ({
    points: steps(runDir(arm.prefix, seed)).map((r) => [r.step, value(r)] as const), colour: arm.colour, dash: dashes[seed] || undefined, width: 1.4,
  })));
  // From the epoch record: one run's summary.json is empty (written as its session ended).
  const accuracy = (prefix: string, seed: number) => percent(records(runDir(prefix, seed)).filter((r) => r.type === "epoch").at(-1)!.testAccuracy);
  return renderFigure([
    { title: "global gradient norm", xLabel: "training step (recorded every 10)", lines: perSeed((r) => r.gradNorm) },
    { title: "training loss of the step's batch", xLabel: "training step (recorded every 10)", lines: perSeed((r) => r.loss) },
    categoryPanel("test accuracy after 60 steps (%)", arms.map((a) => ({ name: a.name.replace("ZCA, ", "ZCA "), values: [0, 1, 2].map((s) => accuracy(a.prefix, s)), colour: a.colour }))),
  ], {
    columns: 3,
    title: "ZCA whitening vs BatchNorm: ResNet-20 ×0.25, Fashion-MNIST, 60 steps, seeds 0–2",
    legend: [
      ...arms.map((a) => ({ text: a.name, colour: a.colour })),
      ...dashes.map((dash, seed) => ({ text: `seed ${seed} (left two panels)`, colour: "#777", dash: dash || undefined })),
    ],
    note: "the present code's runs (seeds 0–1 rerun at af18f7c, seed 2 as recorded); the unreproduced 34.12 % run is not drawn",
  });
}

mkdirSync(OUT, { recursive: true });
const figures: [string, () => string][] = [["dither.svg", ditherFigure], ["pipelined.svg", pipelinedFigure], ["bayes.svg", bayesFigure], ["zca.svg", zcaFigure]];
for (const [name, draw] of figures) {
  writeFileSync(join(OUT, name), draw());
  console.log(join(OUT, name));
}
