/**
 * The grid of test images with the model's labels: each image drawn at 3× with its
 * predicted class underneath, green when right and red (with the true class) when wrong.
 */
import type { Predictions } from "./protocol.ts";

const SCALE = 3;
const LABEL_H = 30;
const GAP = 8;

export function drawPredictions(canvas: HTMLCanvasElement, p: Predictions): void {
  const cellW = Math.max(p.width * SCALE, 96);
  const columns = Math.max(1, Math.floor(((canvas.parentElement?.clientWidth ?? 800) + GAP) / (cellW + GAP)));
  const rows = Math.ceil(p.n / columns);
  const ratio = globalThis.devicePixelRatio || 1;
  const width = columns * (cellW + GAP) - GAP;
  const height = rows * (p.height * SCALE + LABEL_H + GAP);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d")!;
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.imageSmoothingEnabled = false;

  const tile = document.createElement("canvas");
  tile.width = p.width;
  tile.height = p.height;
  const tg = tile.getContext("2d")!;
  const image = tg.createImageData(p.width, p.height);
  for (let i = 0; i < p.n; i++) {
    const x = (i % columns) * (cellW + GAP);
    const y = Math.floor(i / columns) * (p.height * SCALE + LABEL_H + GAP);
    for (let k = 0; k < p.width * p.height; k++) {
      const v = p.pixels[i * p.width * p.height + k];
      image.data.set([v, v, v, 255], 4 * k);
    }
    tg.putImageData(image, 0, 0);
    const ix = x + (cellW - p.width * SCALE) / 2;
    g.drawImage(tile, ix, y, p.width * SCALE, p.height * SCALE);
    const right = p.predicted[i] === p.labels[i];
    g.font = "600 12px system-ui, sans-serif";
    g.textAlign = "center";
    g.textBaseline = "top";
    g.fillStyle = right ? "#1a7f37" : "#cf222e";
    g.fillText(`${right ? "✓" : "✗"} ${p.classNames[p.predicted[i]] ?? p.predicted[i]}`, x + cellW / 2, y + p.height * SCALE + 3);
    if (!right) {
      g.font = "11px system-ui, sans-serif";
      g.fillStyle = "#57606a";
      g.fillText(`is ${p.classNames[p.labels[i]] ?? p.labels[i]}`, x + cellW / 2, y + p.height * SCALE + 17);
    }
  }
}
