/**
 * The CIFAR "binary version" files: fixed-size records, each the label byte(s) then 3072
 * pixel bytes (1024 red, 1024 green, 1024 blue, row-major), i.e. already CHW. CIFAR-10
 * records have one label byte; CIFAR-100 records have two (coarse superclass, then fine
 * class) and we use the fine label, as torchvision does. A file is one split or one of
 * CIFAR-10's five training batches; concatDatasets joins those.
 */
import type { Dataset } from "./dataset.ts";
import { checkLabels } from "./dataset.ts";
import { DatasetError } from "./errors.ts";

const CHANNELS = 3;
const SIDE = 32;
const PIXELS = CHANNELS * SIDE * SIDE;

/** The most bytes a CIFAR file is read as (a gzipped one inflates no further): 60,000 CIFAR-100 records. */
export const MAX_CIFAR_FILE_BYTES = 60000 * (2 + PIXELS);

export interface CifarOptions {
  variant: 10 | 100;
}

/** Decode one CIFAR binary file; `source` names it in errors. */
export function parseCifar(bytes: Uint8Array, options: CifarOptions, source: string, name?: string): Dataset {
  const { variant } = options;
  if (variant !== 10 && variant !== 100) {
    throw new DatasetError(`${source}: CIFAR variant must be 10 or 100, got ${variant}`);
  }
  const labelBytes = variant === 10 ? 1 : 2;
  const recordSize = labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % recordSize !== 0) {
    const whole = Math.floor(bytes.length / recordSize);
    throw new DatasetError(
      `${source}: ${bytes.length} bytes is not a whole number of CIFAR-${variant} records of ${recordSize} bytes ` +
        `(${whole} records and ${bytes.length - whole * recordSize} bytes left over; truncated or not a CIFAR-${variant} binary file?)`,
    );
  }
  const n = bytes.length / recordSize;
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const record = i * recordSize;
    // CIFAR-100: byte 0 is the coarse label, byte 1 the fine one.
    labels[i] = bytes[record + labelBytes - 1];
    images.set(bytes.subarray(record + labelBytes, record + recordSize), i * PIXELS);
  }
  checkLabels(labels, variant, source);
  return { images, labels, n, channels: CHANNELS, height: SIDE, width: SIDE, classes: variant, name };
}
