/**
 * Training curves as a self-contained SVG: two panels (loss, accuracy) against epochs, one
 * colour per run, solid lines for test and dashed for train. `retrograd train` writes one
 * run's curves; `retrograd plot DIR…` overlays several (e.g. baseline vs PowerGrad).
 */

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

/** The series colours, in order (other charts reuse them so a run keeps its colour). */
export const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
const PANEL = { width: 420, height: 260, left: 56, right: 16, top: 34, bottom: 40 };

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Round tick positions covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const step = [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(raw))).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v: number): string {
  return Math.abs(v) >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toPrecision(3).replace(/\.?0+$/, "");
}

function panel(runs: readonly Run[], x0: number, title: string, series: [keyof CurvePoint, string][]): string {
  const w = PANEL.width - PANEL.left - PANEL.right;
  const h = PANEL.height - PANEL.top - PANEL.bottom;
  const points = runs.flatMap((r) => r.history);
  const values = points.flatMap((p) => series.map(([k]) => p[k])).filter(Number.isFinite);
  const epochs = points.map((p) => p.epoch);
  const xMin = Math.min(0, ...epochs);
  const xMax = Math.max(1, ...epochs);
  let yMin = values.length ? Math.min(...values) : 0;
  let yMax = values.length ? Math.max(...values) : 1;
  if (yMax - yMin < 1e-9) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad;
  yMax += pad;
  const sx = (e: number) => x0 + PANEL.left + ((e - xMin) / (xMax - xMin)) * w;
  const sy = (v: number) => PANEL.top + h - ((v - yMin) / (yMax - yMin)) * h;
  const parts: string[] = [
    `<text x="${x0 + PANEL.left + w / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${x0 + PANEL.left}" y="${PANEL.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  ];
  for (const t of ticks(yMin, yMax)) {
    parts.push(`<line x1="${x0 + PANEL.left}" x2="${x0 + PANEL.left + w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 + PANEL.left - 6}" y="${sy(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of ticks(xMin, xMax).filter((t) => Number.isInteger(t))) {
    parts.push(`<text x="${sx(t)}" y="${PANEL.top + h + 16}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`<text x="${x0 + PANEL.left + w / 2}" y="${PANEL.height - 6}" text-anchor="middle">epoch</text>`);
  runs.forEach((run, i) => {
    for (const [key, dash] of series) {
      const pts = run.history.filter((p) => Number.isFinite(p[key])).map((p) => `${sx(p.epoch).toFixed(1)},${sy(p[key]).toFixed(1)}`);
      if (pts.length === 0) continue;
      const colour = COLOURS[i % COLOURS.length];
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" ${dash ? `stroke-dasharray="${dash}"` : ""} points="${pts.join(" ")}"/>`);
      if (pts.length === 1) parts.push(`<circle cx="${pts[0].split(",")[0]}" cy="${pts[0].split(",")[1]}" r="3" fill="${colour}"/>`);
    }
  });
  return parts.join("\n");
}

/** An SVG document with the loss and accuracy panels and a legend of the runs. */
export function renderCurves(runs: readonly Run[]): string {
  const legendHeight = 22 * runs.length + 26;
  const width = PANEL.width * 2;
  const height = PANEL.height + legendHeight;
  const legend = runs.map((run, i) => {
    const y = PANEL.height + 18 + i * 22;
    const colour = COLOURS[i % COLOURS.length];
    return `<line x1="${PANEL.left}" x2="${PANEL.left + 28}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2"/>` +
      `<text x="${PANEL.left + 36}" y="${y + 4}">${escapeXml(run.name)}</text>`;
  });
  legend.push(`<text x="${PANEL.left}" y="${PANEL.height + 18 + runs.length * 22}" fill="#555">solid: test, dashed: train</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(runs, 0, "loss", [["testLoss", ""], ["trainLoss", "5,4"]]),
    panel(runs, PANEL.width, "accuracy", [["testAccuracy", ""], ["trainAccuracy", "5,4"]]),
    ...legend,
    "</svg>",
  ].join("\n");
}
