/**
 * What a PowerGrad grid is: rows (a model at a width multiplier, trained for some epochs) ×
 * PowerGrad α × seeds, one training recipe for all, and the order the runs are taken in.
 *
 * A run's name holds everything that tells it apart (model, width, epochs, a row's own rate
 * or AGC, α, seed), so rows added later get new directories and never touch finished runs. Runs are ordered seed first, then row, then
 * α: every α of every row at seed 0 finishes before any seed 1, so a grid stopped early still
 * holds whole comparisons.
 */
import { RetrogradError } from "../../src/errors.ts";
import { MODEL_NAMES } from "../../src/nn/models/index.ts";
import type { TrainConfig } from "../../src/train/index.ts";

/** Bad grid flags, or a run directory made with other settings. */
export class GridError extends RetrogradError {}

export interface Row {
  model: string;
  width: number;
  epochs: number;
  /** The row's own peak learning rate (e.g. a network without BatchNorm that diverges at the grid's). */
  lr?: number;
  /** Adaptive gradient clipping's λ (the classifier left out), as the paper stabilises its ResNet without BatchNorm. */
  agc?: number;
  /** AGC's λ with the zero-initialised `skip_gain`s left unclipped too (see src/optim/agc.ts for why). */
  agcnogain?: number;
}

/** The recipe every run shares (the paper's: SGD, Nesterov 0.9, wd 5e-4, warm-up, cosine to 0). */
export interface Recipe {
  dataset: string;
  /** The first `subset` training and `testSubset` test images (all when larger than the split). */
  subset: number;
  testSubset: number;
  batchSize: number;
  lr: number;
  augment: "none" | "standard";
}

export interface GridSpec {
  rows: Row[];
  alphas: number[];
  seeds: number[];
  recipe: Recipe;
}

export interface RunSpec {
  row: Row;
  alpha: number;
  seed: number;
  /** The run's directory name, e.g. resnet20-w0.25-e30-a0.5-s1. */
  name: string;
}

const ROW_FORMAT = "model[@width][:epochs][+lr<rate>][+agc<λ> | +agcnogain<λ>]";
const ROW_PARTS = { lr: "the learning rate", agc: "AGC's λ", agcnogain: "AGC's λ" } as const;

/**
 * `model[@width][:epochs][+lr<rate>][+agc<λ> | +agcnogain<λ>]`, e.g. `resnet20@0.25:30`,
 * `resnet20-nonorm@0.25:20+lr0.02` or `resnet20-nonorm@0.25:16+agc0.01`; width 1, the grid's
 * `epochs` and learning rate, and no clipping by default. `+agcnogain` is AGC with the
 * ResNets' zero-initialised skip gains left unclipped as well as the classifier.
 */
export function parseRow(text: string, epochs: number): Row {
  const match = /^([a-z0-9-]+)(?:@([0-9.]+))?(?::([0-9]+))?((?:\+[a-z]+[^+]*)*)$/.exec(text);
  if (!match) throw new GridError(`--rows: "${text}" is not ${ROW_FORMAT} (e.g. resnet20@0.25:30)`);
  const [, model, width = "1", rowEpochs, extras] = match;
  if (!MODEL_NAMES.includes(model)) throw new GridError(`--rows: unknown model "${model}" in "${text}"; available: ${MODEL_NAMES.join(", ")}`);
  const row: Row = { model, width: Number(width), epochs: rowEpochs === undefined ? epochs : Number(rowEpochs) };
  if (!(row.width > 0) || !Number.isFinite(row.width)) throw new GridError(`--rows: width must be a number > 0 in "${text}"`);
  if (!Number.isInteger(row.epochs) || row.epochs < 1) throw new GridError(`--rows: epochs must be a positive integer in "${text}"`);
  for (const extra of extras.split("+").slice(1)) {
    const [, key, value] = /^([a-z]+)(.*)$/.exec(extra)!;
    if (!(key === "lr" || key === "agc" || key === "agcnogain") || row[key] !== undefined || (key !== "lr" && (row.agc ?? row.agcnogain) !== undefined)) {
      throw new GridError(`--rows: "+${extra}" in "${text}" is not one of ${ROW_FORMAT}'s parts (each at most once)`);
    }
    const n = Number(value);
    if (value.trim() === "" || !(n > 0) || !Number.isFinite(n)) throw new GridError(`--rows: ${ROW_PARTS[key]} must be a number > 0 in "${text}"`);
    row[key] = n;
  }
  return row;
}

/** A row as the report shows it: `resnet20@0.25, 30 ep` (and `, lr 0.02`, `, AGC 0.01` where it has them). */
export function rowLabel(row: Row): string {
  const agc = row.agc !== undefined ? `, AGC ${row.agc}` : row.agcnogain !== undefined ? `, AGC ${row.agcnogain} (gains unclipped)` : "";
  return `${row.model}@${row.width}, ${row.epochs} ep${row.lr === undefined ? "" : `, lr ${row.lr}`}${agc}`;
}

/** The row's part of run names: a row's own learning rate and AGC are part of it (rows without them keep their old names). */
export function rowKey(row: Row): string {
  const agc = row.agc !== undefined ? `-agc${row.agc}` : row.agcnogain !== undefined ? `-agcnogain${row.agcnogain}` : "";
  return `${row.model}-w${row.width}-e${row.epochs}${row.lr === undefined ? "" : `-lr${row.lr}`}${agc}`;
}

/** Seed-major, then rows, then α in the order given (baseline first when listed first). */
export function orderedRuns(spec: GridSpec): RunSpec[] {
  return spec.seeds.flatMap((seed) =>
    spec.rows.flatMap((row) => spec.alphas.map((alpha) => ({ row, alpha, seed, name: `${rowKey(row)}-a${alpha}-s${seed}` })))
  );
}

/** The training config of one run; mean/std are the dataset's normalisation. */
export function trainConfig(spec: GridSpec, run: RunSpec, mean: number[], std: number[]): TrainConfig {
  const { epochs } = run.row;
  return {
    epochs, steps: 0, batchSize: spec.recipe.batchSize, lr: run.row.lr ?? spec.recipe.lr, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
    // A warm-up of one epoch (a quarter of very short runs), then cosine to zero.
    schedule: "cosine", warmup: Math.min(1, epochs / 4), powerGrad: run.alpha, labelSmoothing: 0, seed: run.seed,
    shuffle: true, augment: spec.recipe.augment, mean, std, evalBatchSize: 500,
    // Only rows with AGC name an optimiser, so the config.json of every other run stays as it was.
    ...(run.row.agc === undefined ? {} : { optimizer: { name: "sgd", agc: run.row.agc } }),
    ...(run.row.agcnogain === undefined ? {} : { optimizer: { name: "sgd", agc: run.row.agcnogain, agcExclude: ["skip_gain"] } }),
  };
}

/** What a run directory's config.json holds: all that decides its numbers. */
export function runIdentity(spec: GridSpec, run: RunSpec, train: TrainConfig) {
  const { dataset, subset, testSubset } = spec.recipe;
  return { name: run.name, model: run.row.model, width: run.row.width, alpha: run.alpha, seed: run.seed, dataset, subset, testSubset, train };
}

/** JSON with sorted keys, so two identities compare as strings whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v);
}

/** Throws a GridError naming `path` unless the settings saved there are the ones this grid would use. */
export function assertSameSettings(path: string, saved: unknown, wanted: unknown): void {
  const [a, b] = [canonicalJson(saved), canonicalJson(wanted)];
  if (a !== b) {
    throw new GridError(`${path}: made with other settings than this grid's; use another --out, or the flags it was made with.\n` +
      `  saved: ${a}\n  grid:  ${b}`);
  }
}
