/**
 * A small SVG chart kit for the figures retrograd writes (training curves, probe figures):
 * panels on a grid, each with its own axes, lines and shaded bands (the papers' "band over
 * steps" style), optional log scale, and a legend. Self-contained SVG (no fonts or scripts),
 * so a figure opens anywhere and converts to PNG with any SVG renderer.
 */

export const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

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

/** A tick label: integers as they are, others to three significant digits. */
export function label(v: number): string {
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(1).replace("e+", "e");
  return Math.abs(v) >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toPrecision(3).replace(/\.?0+$/, "");
}

export type Point = readonly [number, number];

export interface Line {
  points: readonly Point[];
  colour: string;
  dash?: string;
  width?: number;
  opacity?: number;
}

/** The region between two curves over the same x values. */
export interface Band {
  lower: readonly Point[];
  upper: readonly Point[];
  colour: string;
  opacity?: number;
}

export interface Panel {
  title: string;
  xLabel: string;
  lines?: readonly Line[];
  bands?: readonly Band[];
  /** Logarithmic y axis (non-positive values are left out). */
  logY?: boolean;
  /** Ticks of the y axis given by value and text (replaces the numeric ticks). */
  yTicks?: readonly { value: number; text: string }[];
  /** Ticks of the x axis given by value and text, e.g. names of categories at 1, 2, 3 (replaces the numeric ticks). */
  xTicks?: readonly { value: number; text: string }[];
  /** The x axis's extent (default: the data's), e.g. [0.5, n + 0.5] so categories 1 … n do not sit on the frame. */
  xRange?: readonly [number, number];
}

export interface LegendEntry {
  text: string;
  colour: string;
  dash?: string;
}

export const PANEL = { width: 400, height: 260, left: 62, right: 14, top: 34, bottom: 40 };

function drawPanel(p: Panel, x0: number, y0: number): string {
  const w = PANEL.width - PANEL.left - PANEL.right;
  const h = PANEL.height - PANEL.top - PANEL.bottom;
  const ty = (v: number) => (p.logY ? Math.log10(v) : v);
  const usable = (pt: Point) => Number.isFinite(pt[0]) && Number.isFinite(pt[1]) && (!p.logY || pt[1] > 0);
  const all = [...(p.lines ?? []).flatMap((l) => l.points), ...(p.bands ?? []).flatMap((b) => [...b.lower, ...b.upper])].filter(usable);
  const xs = all.map((pt) => pt[0]), ys = all.map((pt) => ty(pt[1]));
  let [xMin, xMax] = p.xRange ?? (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
  let [yMin, yMax] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
  if (xMax - xMin < 1e-12) [xMin, xMax] = [xMin - 0.5, xMax + 0.5];
  if (yMax - yMin < 1e-12 * Math.max(1, Math.abs(yMax))) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const pad = (yMax - yMin) * 0.05;
  yMin -= pad;
  yMax += pad;
  const left = x0 + PANEL.left, top = y0 + PANEL.top;
  const sx = (x: number) => left + ((x - xMin) / (xMax - xMin)) * w;
  const sy = (y: number) => top + h - ((ty(y) - yMin) / (yMax - yMin)) * h;
  const path = (points: readonly Point[]) => points.filter(usable).map((pt) => `${sx(pt[0]).toFixed(1)},${sy(pt[1]).toFixed(1)}`).join(" ");
  const parts = [
    `<text x="${left + w / 2}" y="${y0 + 20}" text-anchor="middle" font-weight="bold">${escapeXml(p.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  ];
  const yTicks = p.yTicks ?? (p.logY
    ? ticks(yMin, yMax).filter(Number.isInteger).map((e) => ({ value: 10 ** e, text: label(10 ** e) }))
    : ticks(yMin, yMax).map((value) => ({ value, text: label(value) })));
  for (const t of yTicks) {
    const y = sy(t.value);
    if (!(y >= top - 0.5 && y <= top + h + 0.5)) continue;
    parts.push(`<line x1="${left}" x2="${left + w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${left - 6}" y="${y + 4}" text-anchor="end">${escapeXml(t.text)}</text>`);
  }
  const xTicks = p.xTicks ?? ticks(xMin, xMax).map((value) => ({ value, text: label(value) }));
  for (const t of xTicks) parts.push(`<text x="${sx(t.value)}" y="${top + h + 16}" text-anchor="middle">${escapeXml(t.text)}</text>`);
  parts.push(`<text x="${left + w / 2}" y="${y0 + PANEL.height - 6}" text-anchor="middle">${escapeXml(p.xLabel)}</text>`);
  for (const b of p.bands ?? []) {
    const outline = path([...b.upper, ...[...b.lower].reverse()]);
    if (outline) parts.push(`<polygon points="${outline}" fill="${b.colour}" fill-opacity="${b.opacity ?? 0.2}" stroke="none"/>`);
  }
  for (const l of p.lines ?? []) {
    const points = path(l.points);
    if (!points) continue;
    const style = `stroke="${l.colour}" stroke-width="${l.width ?? 1.8}"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}${l.opacity !== undefined ? ` stroke-opacity="${l.opacity}"` : ""}`;
    if (!points.includes(" ")) {
      const [cx, cy] = points.split(",");
      parts.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${l.colour}"/>`);
    } else parts.push(`<polyline fill="none" ${style} points="${points}"/>`);
  }
  return parts.join("\n");
}

/** A figure: `panels` on a grid of `columns`, a title line and a legend below. */
export function renderFigure(panels: readonly Panel[], opts: { columns: number; title?: string; legend?: readonly LegendEntry[]; note?: string }): string {
  const columns = Math.max(1, Math.min(opts.columns, panels.length));
  const rows = Math.ceil(panels.length / columns);
  const head = opts.title ? 26 : 0;
  const legend = opts.legend ?? [];
  // Each legend entry gets a slot wide enough for the longest label (about 6.6 px a character
  // at 12 px), so long run names stack instead of overprinting each other.
  const slot = Math.max(260, 52 + Math.ceil(6.6 * Math.max(0, ...legend.map((e) => e.text.length))));
  const perRow = Math.max(1, Math.floor((PANEL.width * columns - PANEL.left) / slot));
  const legendHeight = legend.length ? 22 * Math.ceil(legend.length / perRow) + 10 : 0;
  const noteHeight = opts.note ? 20 : 0;
  const width = PANEL.width * columns;
  const height = head + PANEL.height * rows + legendHeight + noteHeight;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  if (opts.title) parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(opts.title)}</text>`);
  panels.forEach((p, i) => parts.push(drawPanel(p, (i % columns) * PANEL.width, head + Math.floor(i / columns) * PANEL.height)));
  legend.forEach((entry, i) => {
    const x = PANEL.left + (i % perRow) * slot, y = head + PANEL.height * rows + 16 + Math.floor(i / perRow) * 22;
    parts.push(`<line x1="${x}" x2="${x + 28}" y1="${y}" y2="${y}" stroke="${entry.colour}" stroke-width="2.5"${entry.dash ? ` stroke-dasharray="${entry.dash}"` : ""}/>`);
    parts.push(`<text x="${x + 36}" y="${y + 4}">${escapeXml(entry.text)}</text>`);
  });
  if (opts.note) parts.push(`<text x="${PANEL.left}" y="${height - 6}" fill="#555">${escapeXml(opts.note)}</text>`);
  parts.push("</svg>");
  return parts.join("\n");
}
