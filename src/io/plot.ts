/**
 * Training curves as a self-contained SVG: two panels (loss, accuracy) against epochs, one
 * colour per run, solid lines for test and dashed for train. `retrograd train` writes one
 * run's curves; `retrograd plot DIR…` overlays several (e.g. baseline vs PowerGrad). Drawn
 * with the chart kit of svg_chart.ts, as the probe figures are (probe_plots.ts).
 */
import { COLOURS, type Line, renderFigure } from "./svg_chart.ts";

export interface CurvePoint {
  epoch: number;
  trainLoss: number;
  testLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
}

export interface Run {
  name: string;
  history: readonly CurvePoint[];
}

function curves(runs: readonly Run[], test: keyof CurvePoint, train: keyof CurvePoint): Line[] {
  return runs.flatMap((run, i) => {
    const colour = COLOURS[i % COLOURS.length];
    return [
      { points: run.history.map((p) => [p.epoch, p[test]] as const), colour, width: 2 },
      { points: run.history.map((p) => [p.epoch, p[train]] as const), colour, width: 2, dash: "5,4" },
    ];
  });
}

/** An SVG document with the loss and accuracy panels and a legend of the runs. */
export function renderCurves(runs: readonly Run[]): string {
  return renderFigure([
    { title: "loss", xLabel: "epoch", lines: curves(runs, "testLoss", "trainLoss") },
    { title: "accuracy", xLabel: "epoch", lines: curves(runs, "testAccuracy", "trainAccuracy") },
  ], {
    columns: 2,
    legend: runs.map((run, i) => ({ text: run.name, colour: COLOURS[i % COLOURS.length] })),
    note: "solid: test, dashed: train",
  });
}
