/**
 * Working through a grid: take the first unfinished run nobody else holds (in the grid's
 * order), train it, repeat; wait while the only runs left are held by other live processes.
 *
 * A run lives in <out>/<name>/: config.json (everything that decides its numbers, checked
 * before resuming, so a directory made with other settings is never continued),
 * checkpoint.safetensors (written atomically after every epoch; a run resumes from it and
 * ends with the bits of an uninterrupted run), claim-<pid> while a process trains it, and at
 * the end model.safetensors and result.json (written last: a run is finished when it exists).
 * A run whose loss or gradient stops being finite (the trainer's DivergenceError) is finished
 * too, as diverged: its result.json says at which step, and the grid goes on with its other
 * runs (training it again would diverge at the same step: a run's bits are fixed by its seed).
 *
 * Per epoch the record gets the test-set logit statistics (the authors' LStat), the
 * zeroed-filter count and the smallest filter norm relative to its layer's median; at the end, a clean pass over the training set in eval mode and the
 * final per-filter norms (networks without BatchNorm).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../../src/mod.ts";
import { evaluate, type EpochRecord, Trainer } from "../../src/train/index.ts";
import { readBytes, writeAtomic } from "../../cli/files.ts";
import type { LoadedData } from "../../cli/datasets.ts";
import { clearDeadClaims, liveOwner, tryClaim } from "./claim.ts";
import { assertSameSettings, type GridSpec, orderedRuns, type RunSpec, runIdentity, trainConfig } from "./spec.ts";

export const RESULT_FILE = "result.json";
export const CHECKPOINT_FILE = "checkpoint.safetensors";

export interface GridContext {
  spec: GridSpec;
  outDir: string;
  data: LoadedData;
  /** Seconds between looks while other processes hold the remaining runs. */
  pollSeconds: number;
  log(line: string): void;
}

/** The figures of a finished run (accuracies are fractions; losses are mean cross-entropy). */
export interface FinalFigures {
  /** Running top-1 over the augmented batches of the last epoch, in train mode (the paper's "train accuracy"). */
  trainRunningAccuracy: number;
  trainRunningLoss: number;
  /** One pass over the whole training set in eval mode, without augmentation. */
  cleanTrainAccuracy: number;
  cleanTrainLoss: number;
  testAccuracy: number;
  testLoss: number;
  testLogitNorm: number;
  testLogitAbsMean: number;
  testLogitAbsMax: number;
  testLogitVariance: number;
  /** Filters below rg.analysis.ZEROED_FRACTION of their layer's median norm, and all filters. */
  zeroedFilters: number;
  filters: number;
  /** The smallest filter norm relative to its layer's median, over all layers: how close any filter came to zero. */
  smallestFilterRatio: number;
}

export interface RunResult {
  config: ReturnType<typeof runIdentity>;
  final: FinalFigures;
  /** Absent: what tells a finished run's result from a DivergedResult. */
  diverged?: undefined;
  /** Per-epoch records; `measures` holds the epoch's test logit statistics and zeroed count. */
  history: EpochRecord[];
  /** The final L2 norm of every filter per layer, for networks without BatchNorm (else empty). */
  filterNorms: Record<string, number[]>;
}

/** What result.json holds for a run that diverged: where, and the epochs it finished before. */
export interface DivergedResult {
  config: ReturnType<typeof runIdentity>;
  diverged: { step: number; epoch: number; lastFiniteLoss: number; message: string };
  history: EpochRecord[];
}

/** Whether a model normalises with BatchNorm (its filter norms then say little: BN undoes their scale). */
function hasBatchNorm(model: rg.nn.Module): boolean {
  return [...model.namedModules()].some(([, m]) => m instanceof rg.nn.BatchNorm2d);
}

async function filterFigures(model: rg.nn.Module) {
  const layers = await rg.analysis.modelFilterNorms(model);
  return {
    layers,
    zeroedFilters: layers.reduce((n, l) => n + rg.analysis.countZeroed(l.norms), 0),
    filters: layers.reduce((n, l) => n + l.norms.length, 0),
    smallestFilterRatio: Math.min(...layers.map((l) => Math.min(...l.norms) / rg.analysis.median(l.norms))),
  };
}

/** Throws if the run's directory holds a config.json that differs from what this grid would run. */
function checkSettings(ctx: GridContext, run: RunSpec): void {
  const configPath = join(ctx.outDir, run.name, "config.json");
  if (!existsSync(configPath)) return;
  const wanted = runIdentity(ctx.spec, run, trainConfig(ctx.spec, run, ctx.data.mean, ctx.data.std));
  assertSameSettings(configPath, JSON.parse(readFileSync(configPath, "utf8")), wanted);
}

/** Free a run's weights and optimiser state once its result is written (the next run starts afresh). */
function disposeRun(trainer: Trainer, model: rg.nn.Module): void {
  for (const [, t] of trainer.optimizer.stateDict()) t.dispose();
  model.dispose();
}

/** Train (or resume) one run in `dir` to the end (or to its divergence) and write its result. */
async function trainRun(ctx: GridContext, run: RunSpec, dir: string): Promise<void> {
  checkSettings(ctx, run); // again now that the run is ours: another process may have started it since
  const { data } = ctx;
  const config = trainConfig(ctx.spec, run, data.mean, data.std);
  const identity = runIdentity(ctx.spec, run, config);
  const configPath = join(dir, "config.json");
  if (!existsSync(configPath)) await writeAtomic(configPath, JSON.stringify(identity, null, 2) + "\n");
  // Temporary files of writes that a killed process left behind (this process holds the run).
  for (const file of readdirSync(dir)) if (file.includes(".tmp-")) unlinkSync(join(dir, file));

  rg.manualSeed(run.seed);
  const model = rg.models.createModel(run.row.model, {
    inChannels: data.train.channels, numClasses: data.train.classes, imageSize: data.train.height, widthMultiplier: run.row.width,
  });
  const trainer = new Trainer(model, data.train, data.test, config);
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  if (existsSync(checkpointPath)) {
    trainer.resume(await readBytes(checkpointPath), checkpointPath);
    ctx.log(`${run.name}: resumed after epoch ${trainer.history.length}/${run.row.epochs}`);
  }
  let logits = new rg.analysis.LogitStatsSum();
  const training = trainer.run({
    onTestLogits: (z, classes) => logits.add(z, classes),
    measureEpoch: async () => {
      const s = logits.result();
      logits = new rg.analysis.LogitStatsSum();
      const { zeroedFilters, smallestFilterRatio } = await filterFigures(model);
      return {
        testLogitNorm: s.norm, testLogitAbsMean: s.absMean, testLogitAbsMax: s.absMax, testLogitVariance: s.variance,
        zeroedFilters, smallestFilterRatio,
      };
    },
    onEpoch: async (r, checkpoint) => {
      await writeAtomic(checkpointPath, await checkpoint());
      ctx.log(`${run.name}: epoch ${r.epoch}/${run.row.epochs}, train acc ${(100 * r.trainAccuracy).toFixed(2)}% (running), ` +
        `test acc ${(100 * r.testAccuracy).toFixed(2)}%, logit norm ${r.measures!.testLogitNorm.toFixed(2)}, ` +
        `zeroed filters ${r.measures!.zeroedFilters} (smallest ${r.measures!.smallestFilterRatio.toFixed(3)} of its layer's median), ` +
        `${r.seconds.toFixed(1)} s`);
    },
  });
  let history: readonly EpochRecord[];
  try {
    ({ history } = await training);
  } catch (error) {
    if (!(error instanceof rg.DivergenceError)) throw error;
    const { step, epoch, lastFiniteLoss, message } = error;
    const diverged: DivergedResult = { config: identity, diverged: { step, epoch, lastFiniteLoss, message }, history: [...trainer.history] };
    await writeAtomic(join(dir, RESULT_FILE), JSON.stringify(diverged) + "\n");
    disposeRun(trainer, model);
    ctx.log(`${run.name}: done: diverged at step ${step} (epoch ${epoch}); the last finite training loss was ${lastFiniteLoss}`);
    return;
  }

  const clean = await evaluate(model, data.train, config);
  const filters = await filterFigures(model);
  const last = history[history.length - 1];
  const m = last.measures!;
  const result: RunResult = {
    config: identity,
    final: {
      trainRunningAccuracy: last.trainAccuracy, trainRunningLoss: last.trainLoss,
      cleanTrainAccuracy: clean.accuracy, cleanTrainLoss: clean.loss,
      testAccuracy: last.testAccuracy, testLoss: last.testLoss,
      testLogitNorm: m.testLogitNorm, testLogitAbsMean: m.testLogitAbsMean, testLogitAbsMax: m.testLogitAbsMax,
      testLogitVariance: m.testLogitVariance, zeroedFilters: filters.zeroedFilters, filters: filters.filters,
      smallestFilterRatio: filters.smallestFilterRatio,
    },
    history: [...history],
    filterNorms: hasBatchNorm(model) ? {} : Object.fromEntries(filters.layers.map((l) => [l.name, [...l.norms]])),
  };
  await writeAtomic(join(dir, "model.safetensors"), await rg.io.writeSafetensorsAsync(model.stateDict()));
  await writeAtomic(join(dir, RESULT_FILE), JSON.stringify(result) + "\n");
  disposeRun(trainer, model);
  // The live buffers after the run is freed: a number that grows from run to run is a leak.
  ctx.log(`${run.name}: done: clean train acc ${(100 * clean.accuracy).toFixed(2)}%, test acc ${(100 * last.testAccuracy).toFixed(2)}% ` +
    `(${rg.memory().buffers} buffers left live)`);
}

export const isFinished = (outDir: string, run: RunSpec) => existsSync(join(outDir, run.name, RESULT_FILE));

/**
 * Train every unfinished run of the grid, taking them in order and skipping those another
 * live process holds; returns when every run is finished.
 */
export async function work(ctx: GridContext): Promise<void> {
  const runs = orderedRuns(ctx.spec);
  for (;;) {
    // Every pass, finished runs included: a grid whose runs were made with other settings (by a
    // process started with other flags) is refused rather than silently mixed.
    for (const run of runs) checkSettings(ctx, run);
    const unfinished = runs.filter((run) => !isFinished(ctx.outDir, run));
    if (unfinished.length === 0) {
      for (const run of runs) clearDeadClaims(join(ctx.outDir, run.name));
      return;
    }
    let trained = false;
    for (const run of unfinished) {
      const dir = join(ctx.outDir, run.name);
      mkdirSync(dir, { recursive: true });
      const release = tryClaim(dir);
      if (!release) continue;
      try {
        // Finished by another process between our look and our claim?
        if (!isFinished(ctx.outDir, run)) {
          await trainRun(ctx, run, dir);
          trained = true;
        }
      } finally {
        release();
      }
      break; // back to the first unfinished run: one freed by a dead process comes before later ones
    }
    if (!trained) {
      const held = unfinished.filter((run) => liveOwner(join(ctx.outDir, run.name)));
      if (held.length > 0) {
        ctx.log(`${held.length} unfinished run(s) held by other processes (${held.map((r) => r.name).join(", ")}); looking again in ${ctx.pollSeconds} s`);
        await new Promise((resolve) => setTimeout(resolve, ctx.pollSeconds * 1000));
      }
    }
  }
}
