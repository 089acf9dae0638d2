/**
 * DataLoader: turns a Dataset (uint8 NCHW) into training batches — float32 tensors
 * [B, C, H, W] normalised per channel as (pixel/255 − mean)/std, optionally with the
 * standard CIFAR augmentation (random crop from a zero-padded image, random horizontal flip),
 * in a shuffled order.
 *
 * Reproducibility: all randomness comes from the global seeded generator (src/random.ts),
 * and all of an epoch's draws are reserved when the epoch starts — the permutation first,
 * then three draws per example (crop dy, crop dx, flip). A batch is therefore a pure function
 * of the epoch's reserved draws and its index, so preparing batches ahead of time
 * (`epochAsync`) gives exactly the same batches as `epoch()`, however the consumer
 * interleaves its own random draws (dropout, init).
 *
 * Ownership: each batch's `x` is a fresh tensor made with `tensor(values, shape)`; the caller
 * owns it and must dispose it (or create it inside a `tidy`). `labels` is a fresh Int32Array.
 */
import { permutation, takeDraws, uniform } from "../random.ts";
import { type Tensor, tensor } from "../tensor.ts";
import { ValueError } from "../errors.ts";
import type { Dataset } from "./dataset.ts";

export interface AugmentOptions {
  /** Random crop back to H×W from the image zero-padded by this many pixels on each side. */
  crop?: number;
  /** Mirror each image left–right with probability 1/2. */
  flip?: boolean;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** A new seeded permutation every epoch (default true). */
  shuffle?: boolean;
  /** Drop the last batch when it would be smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Per-channel mean of pixel/255 (default 0 for every channel). */
  mean?: number[];
  /** Per-channel standard deviation of pixel/255 (default 1 for every channel). */
  std?: number[];
  augment?: AugmentOptions;
}

export interface Batch {
  /** [B, C, H, W] float32, normalised; the caller disposes it. */
  x: Tensor;
  labels: Int32Array;
  /** Position of this batch within the epoch, from 0. */
  index: number;
}

/** What one epoch needs to assemble any of its batches: the order and the reserved draws. */
interface EpochPlan {
  order: Int32Array;
  drawKey: number;
  drawCounter: number;
}

const DRAWS_PER_EXAMPLE = 3;

export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly cropPadding: number;
  readonly flip: boolean;
  /** Byte value → normalised float, per channel (256 entries each): folds /255, −mean, /std into one lookup. */
  private readonly normalise: Float32Array;

  constructor(readonly dataset: Dataset, options: DataLoaderOptions) {
    const { batchSize, shuffle = true, dropLast = false, augment = {} } = options;
    const { channels } = dataset;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ValueError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    const mean = options.mean ?? new Array<number>(channels).fill(0);
    const std = options.std ?? new Array<number>(channels).fill(1);
    if (mean.length !== channels || std.length !== channels) {
      throw new ValueError(
        `DataLoader: mean and std need one value per channel (${channels}), got ${mean.length} and ${std.length}`,
      );
    }
    if (std.some((s) => !(s > 0))) throw new ValueError(`DataLoader: std values must be positive, got [${std.join(", ")}]`);
    const crop = augment.crop ?? 0;
    if (!Number.isInteger(crop) || crop < 0) {
      throw new ValueError(`DataLoader: augment.crop (padding) must be a non-negative integer, got ${crop}`);
    }
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.cropPadding = crop;
    this.flip = augment.flip ?? false;
    this.normalise = new Float32Array(channels * 256);
    for (let c = 0; c < channels; c++) {
      for (let v = 0; v < 256; v++) this.normalise[c * 256 + v] = (v / 255 - mean[c]) / std[c];
    }
  }

  get numBatches(): number {
    const { n } = this.dataset;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** One pass over the data, each batch assembled when the loop asks for it. */
  *epoch(): Generator<Batch, void, undefined> {
    const plan = this.planEpoch();
    let buffer = new Float32Array(0);
    for (let index = 0; index < this.numBatches; index++) {
      const size = this.batchLength(index);
      if (buffer.length < size * this.imageLength) buffer = new Float32Array(this.batchSize * this.imageLength);
      const values = buffer.subarray(0, size * this.imageLength);
      const labels = this.assemble(plan, index, values);
      // tensor() copies, so the buffer is reused for the next batch.
      yield { x: tensor(values, this.batchShape(size)), labels, index };
    }
  }

  /**
   * The same batches as `epoch()`, with the next batch's pixels assembled in a `setTimeout(0)`
   * task started as soon as the current batch is handed out. JavaScript is single-threaded,
   * so this overlaps only with time the consumer spends awaiting (a GPU readback, a worker,
   * I/O); a consumer that never awaits sees no gain and no cost. Two buffers alternate so the
   * batch being prepared never overwrites one not yet copied into its tensor.
   */
  async *epochAsync(): AsyncGenerator<Batch, void, undefined> {
    const plan = this.planEpoch();
    const total = this.numBatches;
    const buffers = [new Float32Array(this.batchSize * this.imageLength), new Float32Array(this.batchSize * this.imageLength)];
    const prepare = (index: number): { values: Float32Array; labels: Int32Array } => {
      const values = buffers[index % 2].subarray(0, this.batchLength(index) * this.imageLength);
      return { values, labels: this.assemble(plan, index, values) };
    };
    let current = total > 0 ? prepare(0) : null;
    for (let index = 0; index < total && current !== null; index++) {
      const x = tensor(current.values, this.batchShape(this.batchLength(index)));
      const next = index + 1 < total
        ? new Promise<ReturnType<typeof prepare>>((resolve, reject) =>
          setTimeout(() => {
            try {
              resolve(prepare(index + 1));
            } catch (error) {
              reject(error);
            }
          }, 0)
        )
        : null;
      yield { x, labels: current.labels, index };
      current = next === null ? null : await next;
    }
  }

  private get imageLength(): number {
    const { channels, height, width } = this.dataset;
    return channels * height * width;
  }

  private batchLength(index: number): number {
    return Math.min(this.batchSize, this.dataset.n - index * this.batchSize);
  }

  private batchShape(size: number): number[] {
    const { channels, height, width } = this.dataset;
    return [size, channels, height, width];
  }

  /** Reserve the epoch's randomness up front (see the file comment for why). */
  private planEpoch(): EpochPlan {
    const { n } = this.dataset;
    let order: Int32Array;
    if (this.shuffle) {
      order = permutation(n);
    } else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
    }
    const augments = this.cropPadding > 0 || this.flip;
    // No draws are taken without augmentation, so turning it off does not shift other streams' counters needlessly.
    const { key, counter } = augments ? takeDraws(n * DRAWS_PER_EXAMPLE) : { key: 0, counter: 0 };
    return { order, drawKey: key, drawCounter: counter };
  }

  /** Fill `out` with batch `index` (normalised, augmented) and return its labels. */
  private assemble(plan: EpochPlan, index: number, out: Float32Array): Int32Array {
    const { images, channels, height, width } = this.dataset;
    const size = this.batchLength(index);
    const imageLength = this.imageLength;
    const plane = height * width;
    const pad = this.cropPadding;
    const lut = this.normalise;
    const labels = new Int32Array(size);
    for (let b = 0; b < size; b++) {
      const position = index * this.batchSize + b;
      const example = plan.order[position];
      labels[b] = this.dataset.labels[example];
      // Crop shift in [−pad, pad] per axis (the window's offset in the padded image minus pad); 0 = centred.
      let shiftY = 0, shiftX = 0, mirror = false;
      const draw = plan.drawCounter + position * DRAWS_PER_EXAMPLE;
      if (pad > 0) {
        shiftY = Math.floor(uniform(plan.drawKey, draw) * (2 * pad + 1)) - pad;
        shiftX = Math.floor(uniform(plan.drawKey, draw + 1) * (2 * pad + 1)) - pad;
      }
      if (this.flip) mirror = uniform(plan.drawKey, draw + 2) < 0.5;
      // Output pixel (y, x) reads source (y + shiftY, x' + shiftX), x' = mirrored x when flipping
      // (crop then flip, as torchvision's RandomCrop → RandomHorizontalFlip). Outside the
      // image it is the zero padding, i.e. pixel value 0 normalised.
      const xStart = Math.max(0, -shiftX), xEnd = Math.min(width, width - shiftX); // source-valid range of x'
      const source = example * imageLength;
      for (let c = 0; c < channels; c++) {
        const table = c * 256;
        const padValue = lut[table];
        const srcPlane = source + c * plane;
        const dstPlane = b * imageLength + c * plane;
        for (let y = 0; y < height; y++) {
          const dstRow = dstPlane + y * width;
          const sy = y + shiftY;
          if (sy < 0 || sy >= height) {
            out.fill(padValue, dstRow, dstRow + width);
            continue;
          }
          const srcRow = srcPlane + sy * width + shiftX;
          if (!mirror) {
            // x' = x: pixels [xStart, xEnd) come from the image, the rest is padding.
            for (let x = 0; x < xStart; x++) out[dstRow + x] = padValue;
            for (let x = xStart; x < xEnd; x++) out[dstRow + x] = lut[table + images[srcRow + x]];
            for (let x = xEnd; x < width; x++) out[dstRow + x] = padValue;
          } else {
            // x' = width−1−x.
            for (let x = 0; x < width; x++) {
              const xs = width - 1 - x;
              out[dstRow + x] = xs >= xStart && xs < xEnd ? lut[table + images[srcRow + xs]] : padValue;
            }
          }
        }
      }
    }
    return labels;
  }
}
