/**
 * The grid's test of "the gain grows as the network underfits", as one SVG: for every row
 * (model at a width), PowerGrad's difference to the baseline (± one standard error, paired
 * by seed) against how well the baseline fits its training set (its clean training accuracy).
 * One panel per figure (e.g. Δ clean train accuracy, Δ test accuracy), one colour per α.
 */

export interface GainPoint {
  /** The row, e.g. "resnet20@0.25, 30 ep". */
  row: string;
  /** The baseline's clean training accuracy (%) of the row: how far it is from fitting. */
  x: number;
  alpha: number;
  /** One difference per panel, in the panel's unit (percentage points). */
  values: { mean: number; se: number }[];
}

const COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
const W = 460, H = 300, LEFT = 60, RIGHT = 16, TOP = 34, BOTTOM = 44;

const finite = (v: number) => Number.isFinite(v);

function niceTicks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 5 || 1;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

function panel(points: readonly GainPoint[], alphas: readonly number[], index: number, title: string, x0: number): string {
  const xs = points.map((p) => p.x);
  const ys = points.flatMap((p) => {
    const { mean, se } = p.values[index];
    return [mean, mean - (finite(se) ? se : 0), mean + (finite(se) ? se : 0), 0];
  }).filter(finite);
  let [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const xPad = (xMax - xMin) * 0.08 || 1;
  [xMin, xMax] = [xMin - xPad, xMax + xPad];
  let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const yPad = (yMax - yMin) * 0.08 || 0.5;
  [yMin, yMax] = [yMin - yPad, yMax + yPad];
  const w = W - LEFT - RIGHT, h = H - TOP - BOTTOM;
  const sx = (v: number) => x0 + LEFT + ((v - xMin) / (xMax - xMin)) * w;
  const sy = (v: number) => TOP + h - ((v - yMin) / (yMax - yMin)) * h;
  const parts = [
    `<text x="${x0 + LEFT + w / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<rect x="${x0 + LEFT}" y="${TOP}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
    `<text x="${x0 + LEFT + w / 2}" y="${H - 6}" text-anchor="middle">baseline's clean train accuracy (%)</text>`,
  ];
  for (const t of niceTicks(yMin, yMax)) {
    parts.push(`<line x1="${x0 + LEFT}" x2="${x0 + LEFT + w}" y1="${sy(t)}" y2="${sy(t)}" stroke="${t === 0 ? "#444" : "#eee"}"/>`);
    parts.push(`<text x="${x0 + LEFT - 6}" y="${sy(t) + 4}" text-anchor="end">${t}</text>`);
  }
  for (const t of niceTicks(xMin, xMax)) parts.push(`<text x="${sx(t)}" y="${TOP + h + 16}" text-anchor="middle">${t}</text>`);
  // Points of one row sit side by side around its x, so their error bars do not overlap.
  alphas.forEach((alpha, a) => {
    const colour = COLOURS[a % COLOURS.length];
    const offset = (a - (alphas.length - 1) / 2) * 5;
    for (const p of points.filter((q) => q.alpha === alpha)) {
      const { mean, se } = p.values[index];
      if (!finite(mean)) continue;
      const cx = sx(p.x) + offset;
      if (finite(se)) parts.push(`<line x1="${cx}" x2="${cx}" y1="${sy(mean - se)}" y2="${sy(mean + se)}" stroke="${colour}"/>`);
      parts.push(`<circle cx="${cx}" cy="${sy(mean)}" r="3.5" fill="${colour}"><title>${p.row} α=${alpha}: ${mean.toFixed(2)} ± ${se.toFixed(2)}</title></circle>`);
    }
  });
  return parts.join("\n");
}

/** Panels side by side; a legend of the α and of the rows with their x, one row per line (row names run long). */
export function renderGainPlot(points: readonly GainPoint[], titles: readonly string[]): string {
  const alphas = [...new Set(points.map((p) => p.alpha))];
  const rows = [...new Map(points.map((p) => [p.row, p.x])).entries()].sort((a, b) => a[1] - b[1]);
  const legend = [
    ...alphas.map((alpha, a) =>
      `<circle cx="${LEFT + 6 + 90 * a}" cy="${H + 14}" r="4" fill="${COLOURS[a % COLOURS.length]}"/><text x="${LEFT + 14 + 90 * a}" y="${H + 18}">α = ${alpha}</text>`),
    `<text x="${LEFT}" y="${H + 40}" fill="#555">each point: mean over seeds of (PowerGrad − baseline) at the same seed, bar ± 1 standard error; rows (x):</text>`,
    ...rows.map(([row, x], i) => `<text x="${LEFT}" y="${H + 60 + 18 * i}" fill="#555">${row}: ${x.toFixed(1)} %</text>`),
  ];
  const width = W * titles.length;
  const height = H + 70 + 18 * rows.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...titles.map((title, i) => panel(points, alphas, i, title, i * W)),
    ...legend,
    "</svg>",
  ].join("\n");
}
