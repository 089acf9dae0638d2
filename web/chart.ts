/**
 * A small line chart on a canvas: axes with round ticks, a grid, a legend, one polyline per
 * series (or dots, for sparse series such as per-epoch test figures). Redraws at most once
 * per animation frame however often points arrive, and follows the canvas's CSS size and
 * the screen's pixel ratio.
 */
export interface Series {
  name: string;
  color: string;
  /** Draw markers only (for a handful of points). */
  dots?: boolean;
  points: { x: number; y: number }[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  /** Fixed y range (e.g. 0..1 for accuracy); otherwise from the data. */
  yMin?: number;
  yMax?: number;
  format: (v: number) => string;
}

export class LineChart {
  readonly series: Series[];
  /** The x axis spans at least 0..xMax (the run's planned steps). */
  xMax = 1;
  private pending = false;

  constructor(private readonly canvas: HTMLCanvasElement, private readonly options: ChartOptions, series: Omit<Series, "points">[]) {
    this.series = series.map((s) => ({ ...s, points: [] }));
    this.draw();
  }

  add(seriesIndex: number, x: number, y: number): void {
    if (Number.isFinite(y)) this.series[seriesIndex].points.push({ x, y });
    this.schedule();
  }

  clear(): void {
    for (const s of this.series) s.points = [];
    this.schedule();
  }

  get pointCount(): number {
    return this.series.reduce((n, s) => n + s.points.length, 0);
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw(): void {
    const { canvas, options } = this;
    const ratio = globalThis.devicePixelRatio || 1;
    const width = canvas.clientWidth || 480;
    const height = canvas.clientHeight || 240;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d")!;
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "12px system-ui, sans-serif";

    const all = this.series.flatMap((s) => s.points);
    const xMax = Math.max(this.xMax, ...all.map((p) => p.x));
    let yMin = options.yMin ?? Math.min(...all.map((p) => p.y));
    let yMax = options.yMax ?? Math.max(...all.map((p) => p.y));
    if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) [yMin, yMax] = [0, 1];
    if (options.yMin === undefined) yMin = Math.min(0, yMin);
    if (yMax - yMin < 1e-9) yMax = yMin + 1;
    const yTicks = niceTicks(yMin, yMax, 5);
    if (options.yMax === undefined) yMax = yTicks[yTicks.length - 1];
    const xTicks = niceTicks(0, xMax, 6).filter((t) => t <= xMax);

    const left = 48, right = 16, top = 26, bottom = 34;
    const plotW = width - left - right, plotH = height - top - bottom;
    const px = (x: number) => left + (x / xMax) * plotW;
    const py = (y: number) => top + (1 - (y - yMin) / (yMax - yMin)) * plotH;

    g.fillStyle = "#1f2328";
    g.font = "600 13px system-ui, sans-serif";
    g.textAlign = "left";
    g.textBaseline = "alphabetic";
    g.fillText(options.title, left, 16);
    g.font = "12px system-ui, sans-serif";

    g.strokeStyle = "#e5e7eb";
    g.lineWidth = 1;
    g.fillStyle = "#57606a";
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const t of yTicks) {
      if (t < yMin - 1e-12 || t > yMax + 1e-12) continue;
      const y = Math.round(py(t)) + 0.5;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(left + plotW, y);
      g.stroke();
      g.fillText(options.format(t), left - 6, y);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    for (const t of xTicks) {
      const x = Math.round(px(t)) + 0.5;
      g.beginPath();
      g.moveTo(x, top);
      g.lineTo(x, top + plotH);
      g.stroke();
      g.fillText(String(t), x, top + plotH + 5);
    }
    g.fillText(options.xLabel, left + plotW / 2, top + plotH + 19);
    g.strokeStyle = "#8c959f";
    g.strokeRect(left + 0.5, top + 0.5, plotW, plotH);

    g.save();
    g.beginPath();
    g.rect(left, top, plotW, plotH);
    g.clip();
    for (const s of this.series) {
      if (s.dots) continue;
      g.strokeStyle = s.color;
      g.lineWidth = 1.75;
      g.lineJoin = "round";
      g.beginPath();
      s.points.forEach((p, i) => (i === 0 ? g.moveTo(px(p.x), py(p.y)) : g.lineTo(px(p.x), py(p.y))));
      g.stroke();
    }
    g.restore();
    // Markers are not clipped: a test point at the last step sits on the frame.
    for (const s of this.series.filter((s) => s.dots)) {
      g.fillStyle = s.color;
      g.strokeStyle = "#fff";
      g.lineWidth = 1.5;
      for (const p of s.points) {
        g.beginPath();
        g.arc(px(p.x), py(p.y), 4.5, 0, 2 * Math.PI);
        g.fill();
        g.stroke();
      }
    }

    // Legend, top right.
    g.textAlign = "right";
    g.textBaseline = "middle";
    let x = left + plotW;
    for (const s of [...this.series].reverse()) {
      const label = s.points.length ? `${s.name} ${options.format(s.points[s.points.length - 1].y)}` : s.name;
      g.fillStyle = "#1f2328";
      g.fillText(label, x, 14);
      x -= g.measureText(label).width + 6;
      g.fillStyle = s.color;
      g.fillRect(x - 12, 11, 12, 6);
      x -= 24;
    }
  }
}

/** About `count` round tick values covering lo..hi (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 0.999; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}
