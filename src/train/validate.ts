/**
 * What a resumed run reads back, checked before it is trusted: the training position, the
 * configuration and the metrics of a checkpoint's metadata (and, for the CLI, config.json)
 * must have the right types, finite values in range, known names, and a position that fits
 * the run (step = epoch · batches + batch, one history record per finished epoch, within the
 * run's length). A malformed field is a CheckpointError naming the file and the field;
 * without these checks an `epoch: "x"` made the loop run forever.
 */
import { CheckpointError } from "../errors.ts";
import type { Fields } from "../io/fields.ts";
import type { RandomState } from "../random.ts";
import type { EpochRecord, TrainConfig, TrainingPosition, TrainingProgress } from "./records.ts";
import { readOptimizerSettings } from "../optim/build.ts";

function randomState(f: Fields): RandomState {
  return { seed: f.int("seed", 0, 0xffffffff), counter: f.int("counter") };
}

export function readPosition(f: Fields): TrainingPosition {
  return {
    epoch: f.int("epoch"), batchInEpoch: f.int("batchInEpoch"), step: f.int("step"),
    rngAtEpochStart: randomState(f.object("rngAtEpochStart")), rngNow: randomState(f.object("rngNow")),
  };
}

/** A TrainConfig with every field in the range the CLI's flags allow. */
export function readTrainConfig(f: Fields): TrainConfig {
  const channels = f.numbers("mean").length;
  const std = f.numbers("std", channels);
  if (!std.every((s) => s > 0)) f.fail("std", "positive numbers");
  return {
    epochs: f.int("epochs"), steps: f.int("steps"), batchSize: f.int("batchSize", 1),
    lr: f.number("lr", { min: 0 }), momentum: f.number("momentum", { min: 0, max: 1 }), nesterov: f.boolean("nesterov"),
    weightDecay: f.number("weightDecay", { min: 0 }), schedule: f.string("schedule", ["constant", "step", "cosine"] as const),
    warmup: f.number("warmup", { min: 0 }), powerGrad: f.number("powerGrad", { min: 0, max: 1 }),
    labelSmoothing: f.number("labelSmoothing", { min: 0, max: 1 }), seed: f.int("seed", 0, 0xffffffff),
    shuffle: f.boolean("shuffle"), augment: f.string("augment", ["none", "standard"] as const),
    mean: f.numbers("mean"), std, evalBatchSize: f.int("evalBatchSize", 1),
    ...(f.has("onNonFinite") ? { onNonFinite: f.string("onNonFinite", ["stop", "skip"] as const) } : {}),
    ...(f.has("optimizer") ? { optimizer: readOptimizerSettings(f.object("optimizer")) } : {}),
  };
}

function epochRecord(f: Fields): EpochRecord {
  const metric = (name: string) => f.number(name, { finite: false });
  return {
    type: f.string("type", ["epoch"] as const), epoch: f.int("epoch", 1), step: f.int("step"), lr: metric("lr"),
    trainLoss: metric("trainLoss"), trainAccuracy: metric("trainAccuracy"), testLoss: metric("testLoss"),
    testAccuracy: metric("testAccuracy"), skippedSteps: f.has("skippedSteps") ? f.int("skippedSteps") : 0,
    seconds: metric("seconds"), imagesPerSec: metric("imagesPerSec"),
    ...(f.has("measures") ? { measures: f.numberRecord("measures") } : {}),
  };
}

export function readProgress(f: Fields): TrainingProgress {
  const sums = f.object("epochSums");
  const seen = sums.int("seen");
  return {
    config: readTrainConfig(f.object("config")),
    history: f.objects("history").map(epochRecord),
    epochSums: {
      loss: sums.number("loss", { finite: false }), correct: sums.int("correct", 0, seen), seen,
      skipped: sums.has("skipped") ? sums.int("skipped") : 0,
    },
  };
}

/** The position must be one this run can reach: `batches` per epoch, `config`'s length. */
export function checkPosition(p: TrainingPosition, progress: TrainingProgress, batches: number, config: TrainConfig, source: string): void {
  const fail = (why: string) => {
    throw new CheckpointError(`${source}: the position (epoch ${p.epoch}, batch ${p.batchInEpoch}, step ${p.step}) ${why}`);
  };
  if (p.batchInEpoch >= batches) fail(`lies past the ${batches} batches of an epoch`);
  // A step budget ends its last epoch early: that final position is the one exception.
  const budgetEnd = config.steps > 0 && p.step === config.steps && p.batchInEpoch === 0 && p.epoch > 0 &&
    p.step > (p.epoch - 1) * batches && p.step < p.epoch * batches;
  if (p.step !== p.epoch * batches + p.batchInEpoch && !budgetEnd) fail(`is not one a run of ${batches} batches per epoch reaches`);
  if (progress.history.length !== p.epoch) fail(`does not match the ${progress.history.length} epoch records it holds`);
  const beyond = config.steps > 0 ? p.step > config.steps : p.epoch > config.epochs;
  if (beyond) fail(`lies beyond the run's ${config.steps > 0 ? `${config.steps} steps` : `${config.epochs} epochs`}`);
}
