/**
 * The in-memory dataset every reader produces and the DataLoader consumes: raw uint8 pixels
 * in NCHW order plus int32 labels. Keeping pixels as bytes (not float32) keeps CIFAR-10 at
 * 150 MB instead of 600 MB; the loader normalises one batch at a time. Also here: joining
 * datasets (CIFAR-10's five training batches), taking a subset (validation splits, quick
 * runs), and a synthetic dataset for tests and demos that needs no files.
 */
import { mix, uniform } from "../random.ts";
import { DatasetError } from "./errors.ts";

export interface Dataset {
  /** n·channels·height·width pixels, NCHW, 0..255. */
  images: Uint8Array;
  /** n class indices in [0, classes). */
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  classes: number;
  /** For messages and logs, e.g. "fashion-mnist-train". */
  name?: string;
}

/** Pixels per image. */
export function imageSize(ds: Dataset): number {
  return ds.channels * ds.height * ds.width;
}

/** Check that a label array holds only classes 0..classes-1; `source` names the file. */
export function checkLabels(labels: Int32Array, classes: number, source: string): void {
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label < 0 || label >= classes) {
      throw new DatasetError(`${source}: label ${label} of example ${i} is out of range (expected 0..${classes - 1})`);
    }
  }
}

/** Join datasets of the same image shape, in order (e.g. CIFAR-10's data_batch_1..5). */
export function concatDatasets(parts: Dataset[], name?: string): Dataset {
  if (parts.length === 0) throw new DatasetError("concatDatasets: no datasets given");
  const first = parts[0];
  let n = 0;
  let classes = 0;
  for (const part of parts) {
    if (part.channels !== first.channels || part.height !== first.height || part.width !== first.width) {
      throw new DatasetError(
        `concatDatasets: ${part.name ?? "a dataset"} has images ${part.channels}×${part.height}×${part.width} ` +
          `but ${first.name ?? "the first"} has ${first.channels}×${first.height}×${first.width}`,
      );
    }
    n += part.n;
    classes = Math.max(classes, part.classes);
  }
  const images = new Uint8Array(n * imageSize(first));
  const labels = new Int32Array(n);
  let at = 0;
  for (const part of parts) {
    images.set(part.images.subarray(0, part.n * imageSize(part)), at * imageSize(first));
    labels.set(part.labels.subarray(0, part.n), at);
    at += part.n;
  }
  return { ...shapeOf(first), images, labels, n, classes, name: name ?? first.name };
}

/** The examples at `indices` (in that order; repeats allowed), copied into a new dataset. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name?: string): Dataset {
  const size = imageSize(ds);
  const images = new Uint8Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    if (!Number.isInteger(index) || index < 0 || index >= ds.n) {
      throw new DatasetError(`subset: index ${index} is out of range for ${ds.name ?? "a dataset"} of ${ds.n} examples`);
    }
    images.set(ds.images.subarray(index * size, (index + 1) * size), i * size);
    labels[i] = ds.labels[index];
  }
  return { ...shapeOf(ds), images, labels, n: indices.length, classes: ds.classes, name: name ?? ds.name };
}

export interface SyntheticOptions {
  n: number;
  channels: number;
  height: number;
  width: number;
  classes: number;
  seed: number;
  /**
   * Which images: "train" (the default) or "test", an independent draw of images from the same
   * classes. The class layout (each blob's place and colour) depends on `seed` alone, so two
   * splits of one seed are one task.
   */
  split?: "train" | "test";
}

/**
 * A learnable toy dataset: each class is a bright Gaussian blob at its own position with its
 * own colour, on a noisy background, with a little per-image jitter. It is a pure function of
 * the options (its own stream keyed by `seed`, not the global generator), so it does not
 * disturb a run's random sequence. Labels cycle 0,1,2,… so classes are balanced.
 */
export function synthetic(options: SyntheticOptions): Dataset {
  const { n, channels, height, width, classes, seed, split = "train" } = options;
  for (const [key, value] of Object.entries({ n, channels, height, width, classes })) {
    if (!Number.isInteger(value) || value < 1) throw new DatasetError(`synthetic: ${key} must be a positive integer, got ${value}`);
  }
  let key = mix((seed ^ 0x5eedda7a) >>> 0);
  let draw = 0;
  const next = () => uniform(key, draw++);
  // Per class: a blob centre inside the middle 60% of the image and a colour per channel.
  const centreY = new Float64Array(classes);
  const centreX = new Float64Array(classes);
  const colour = new Float64Array(classes * channels);
  for (let c = 0; c < classes; c++) {
    centreY[c] = (0.2 + 0.6 * next()) * (height - 1);
    centreX[c] = (0.2 + 0.6 * next()) * (width - 1);
    for (let ch = 0; ch < channels; ch++) colour[c * channels + ch] = 0.5 + 0.5 * next();
  }
  if (split !== "train" && split !== "test") throw new DatasetError(`synthetic: split must be "train" or "test", got ${split}`);
  // The training images continue the layout's stream; the test images come from their own.
  if (split === "test") [key, draw] = [mix((key ^ 0x7e5751d) >>> 0), 0];
  const sigma = Math.max(1, Math.min(height, width) / 6);
  const images = new Uint8Array(n * channels * height * width);
  const labels = new Int32Array(n);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const label = i % classes;
    labels[i] = label;
    const cy = centreY[label] + (next() - 0.5) * 2;
    const cx = centreX[label] + (next() - 0.5) * 2;
    for (let ch = 0; ch < channels; ch++) {
      const strength = colour[label * channels + ch];
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const d2 = (y - cy) ** 2 + (x - cx) ** 2;
          const value = 0.25 * next() + 0.75 * strength * Math.exp(-d2 / (2 * sigma * sigma));
          images[p++] = Math.min(255, Math.round(value * 255));
        }
      }
    }
  }
  return { images, labels, n, channels, height, width, classes, name: `synthetic-${seed}${split === "test" ? "-test" : ""}` };
}

function shapeOf(ds: Dataset): { channels: number; height: number; width: number } {
  return { channels: ds.channels, height: ds.height, width: ds.width };
}
