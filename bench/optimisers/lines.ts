/**
 * A line chart as a self-contained SVG, for the optimiser comparison's plots that are not
 * epoch curves (src/io/plot.ts draws those): training loss against steps, and per-layer
 * learning rates against steps on a logarithmic axis. Series may be dashed; many series (one
 * per layer) get colours along a blue-to-red ramp in their order, and the legend wraps into
 * columns under the plot.
 */
import { COLOURS, escapeXml, ticks } from "../../src/io/svg_chart.ts";

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  colour?: string;
  dash?: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logY?: boolean;
}

const BOX = { width: 760, height: 380, left: 70, right: 20, top: 34, bottom: 44 };

/** Colour k of n along a blue → green → red ramp (for one series per layer, in depth order). */
export function ramp(k: number, n: number): string {
  const t = n <= 1 ? 0 : k / (n - 1);
  const stops = [[49, 54, 149], [69, 117, 180], [116, 173, 209], [102, 189, 99], [253, 174, 97], [244, 109, 67], [165, 0, 38]];
  const x = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, j) => Math.round(v + f * (stops[i + 1][j] - v)));
  return `rgb(${c.join(",")})`;
}

function label(v: number): string {
  if (v !== 0 && (Math.abs(v) < 1e-2 || Math.abs(v) >= 1e4)) return v.toExponential(0).replace("e+", "e");
  return Math.abs(v) >= 100 || v === Math.round(v) ? String(Math.round(v)) : v.toPrecision(3).replace(/\.?0+$/, "");
}

export function renderLines(series: readonly Series[], o: ChartOptions): string {
  const w = BOX.width - BOX.left - BOX.right;
  const h = BOX.height - BOX.top - BOX.bottom;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
  const xs = all.map(([x]) => x), ys = all.map(([, y]) => (o.logY ? Math.log10(y) : y));
  const xMin = Math.min(0, ...xs), xMax = Math.max(1, ...xs);
  let yMin = ys.length ? Math.min(...ys) : 0, yMax = ys.length ? Math.max(...ys) : 1;
  if (yMax - yMin < 1e-9) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const margin = (yMax - yMin) * 0.04;
  [yMin, yMax] = [yMin - margin, yMax + margin];
  const sx = (x: number) => BOX.left + ((x - xMin) / (xMax - xMin)) * w;
  const sy = (y: number) => BOX.top + h - (((o.logY ? Math.log10(y) : y) - yMin) / (yMax - yMin)) * h;
  const parts = [
    `<text x="${BOX.left + w / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(o.title)}</text>`,
    `<rect x="${BOX.left}" y="${BOX.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  ];
  // Log axes: every decade, and 2× and 5× within it when fewer than three decades show.
  const multiples = yMax - yMin < 3 ? [1, 2, 5] : [1];
  const yTicks = o.logY
    ? Array.from({ length: Math.floor(yMax) - Math.floor(yMin) + 1 }, (_, k) => multiples.map((m) => m * 10 ** (Math.floor(yMin) + k)))
      .flat().filter((t) => Math.log10(t) >= yMin && Math.log10(t) <= yMax)
    : ticks(yMin, yMax);
  for (const t of yTicks) {
    parts.push(`<line x1="${BOX.left}" x2="${BOX.left + w}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${BOX.left - 6}" y="${sy(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  for (const t of ticks(xMin, xMax)) parts.push(`<text x="${sx(t)}" y="${BOX.top + h + 16}" text-anchor="middle">${label(t)}</text>`);
  parts.push(`<text x="${BOX.left + w / 2}" y="${BOX.height - 8}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${BOX.top + h / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logY || y > 0));
    if (pts.length === 0) return;
    const colour = s.colour ?? COLOURS[i % COLOURS.length];
    const coords = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.6" ${s.dash ? `stroke-dasharray="${s.dash}"` : ""} points="${coords}"/>`);
  });
  const columns = series.length > 8 ? 3 : 1;
  const rows = Math.ceil(series.length / columns);
  const legend = series.map((s, i) => {
    const x = BOX.left + (i % columns) * (w / columns), y = BOX.height + 14 + Math.floor(i / columns) * 18;
    const colour = s.colour ?? COLOURS[i % COLOURS.length];
    return `<line x1="${x}" x2="${x + 26}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ""}/>` +
      `<text x="${x + 32}" y="${y + 4}">${escapeXml(s.name)}</text>`;
  });
  const height = BOX.height + rows * 18 + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${BOX.width}" height="${height}" viewBox="0 0 ${BOX.width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts, ...legend, "</svg>",
  ].join("\n");
}
