/**
 * Working through the optimiser comparison (bench/optimisers.ts): take the first unfinished
 * run nobody else holds, train it, repeat; wait while the runs left are held by other live
 * processes or wait for their arm's tuning. A run lives in <out>/<name>/: config.json
 * (everything that decides its numbers, checked before resuming), checkpoint.safetensors
 * (after every epoch), steps.jsonl (the loss and per-layer rates every --log-every steps,
 * rewritten with each checkpoint, so a resumed run's log is the uninterrupted one's),
 * claim-<pid> while a process trains it, and result.json, written last.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../../src/mod.ts";
import { evaluate, Trainer } from "../../src/train/index.ts";
import { readBytes, writeAtomic } from "../../cli/files.ts";
import { liveOwner, tryClaim } from "../grid/claim.ts";
import { assertSameSettings } from "../grid/spec.ts";
import {
  CHECKPOINT_FILE, identity, LOG_FILE, pendingRuns, type Recipe, RESULT_FILE, type Run, type RunResult, trainConfig,
} from "./spec.ts";

/** Zero padding around every image (Fashion-MNIST's background is 0), e.g. 28×28 → 32×32. */
export function pad(ds: rg.data.Dataset, p: number): rg.data.Dataset {
  if (p === 0) return ds;
  const h = ds.height + 2 * p, w = ds.width + 2 * p;
  const images = new Uint8Array(ds.n * ds.channels * h * w);
  for (let plane = 0; plane < ds.n * ds.channels; plane++) {
    for (let y = 0; y < ds.height; y++) {
      const from = (plane * ds.height + y) * ds.width;
      images.set(ds.images.subarray(from, from + ds.width), (plane * h + y + p) * w + p);
    }
  }
  return { ...ds, images, height: h, width: w };
}

/** The four splits: final runs train on `train` and are scored on `test`; tuning runs train on `tuneTrain`, scored on `heldOut`. */
export interface Data {
  train: rg.data.Dataset;
  test: rg.data.Dataset;
  tuneTrain: rg.data.Dataset;
  heldOut: rg.data.Dataset;
  mean: number[];
  std: number[];
}

export type Log = (line: string) => void;

/** Train (or resume) one run to its end and write its result. */
async function trainRun(recipe: Recipe, run: Run, dir: string, data: Data, log: Log): Promise<void> {
  const config = trainConfig(recipe, run, data);
  const wanted = identity(recipe, run, config);
  const configPath = join(dir, "config.json");
  if (existsSync(configPath)) assertSameSettings(configPath, JSON.parse(readFileSync(configPath, "utf8")), wanted);
  else await writeAtomic(configPath, JSON.stringify(wanted, null, 2) + "\n");
  for (const file of readdirSync(dir)) if (file.includes(".tmp-")) unlinkSync(join(dir, file));

  const [train, evalSet] = run.phase === "tune" ? [data.tuneTrain, data.heldOut] : [data.train, data.test];
  rg.manualSeed(run.seed);
  const model = rg.models.createModel(recipe.model, {
    inChannels: train.channels, numClasses: train.classes, imageSize: train.height, widthMultiplier: recipe.width,
  });
  const trainer = new Trainer(model, train, evalSet, config);
  const names = new Map([...model.namedParameters()].map(([name, p]) => [p, name]));
  const checkpointPath = join(dir, CHECKPOINT_FILE);
  const logPath = join(dir, LOG_FILE);
  let lines: string[] = [];
  if (existsSync(checkpointPath)) {
    trainer.resume(await readBytes(checkpointPath), checkpointPath);
    // The step log as far as the checkpoint: it is rewritten with each checkpoint, so later lines are the interrupted epoch's.
    lines = existsSync(logPath) ? readFileSync(logPath, "utf8").split("\n").filter((l) => l && JSON.parse(l).step <= trainer.step) : [];
    log(`${run.name}: resumed after epoch ${trainer.history.length}/${config.epochs}`);
  }
  let diverged = false;
  // The mean batch loss since the last record or the epoch's start (checkpoints fall on epoch
  // ends, so a resumed run's windows are the uninterrupted run's).
  let window = { sum: 0, count: 0 };
  try {
    await trainer.run({
      onStep: async (r) => {
        if (r.batch === 1) window = { sum: 0, count: 0 };
        window.sum += r.loss;
        window.count++;
        if (r.step % recipe.logEvery !== 0 && r.step !== 1) return;
        const layers = await rg.optim.readLayerRates(trainer.optimizer, names);
        lines.push(rg.io.stringifyRecord({ step: r.step, epoch: r.epoch, lr: r.lr, loss: window.sum / window.count, accuracy: r.accuracy, layers }));
        window = { sum: 0, count: 0 };
      },
      onEpoch: async (r, checkpoint) => {
        await writeAtomic(logPath, lines.join("\n") + "\n");
        await writeAtomic(checkpointPath, await checkpoint());
        log(`${run.name}: epoch ${r.epoch}/${config.epochs}, train loss ${r.trainLoss.toFixed(4)} acc ${(100 * r.trainAccuracy).toFixed(2)}% (running), ` +
          `${run.phase === "tune" ? "held-out" : "test"} acc ${(100 * r.testAccuracy).toFixed(2)}%, ${r.seconds.toFixed(1)} s`);
      },
    });
  } catch (error) {
    if (!(error instanceof rg.DivergenceError)) throw error;
    diverged = true;
    log(`${run.name}: diverged (${error.message.split("\n")[0]})`);
  }
  const last = trainer.history[trainer.history.length - 1];
  const result: RunResult = {
    identity: wanted, diverged, history: [...trainer.history],
    evalAccuracy: diverged ? NaN : last.testAccuracy, evalLoss: diverged ? NaN : last.testLoss,
  };
  if (run.phase === "final" && !diverged) {
    const clean = await evaluate(model, data.train, config);
    result.cleanTrainAccuracy = clean.accuracy;
    result.cleanTrainLoss = clean.loss;
  }
  await writeAtomic(logPath, lines.join("\n") + "\n");
  await writeAtomic(join(dir, RESULT_FILE), rg.io.stringifyRecord(result) + "\n");
  for (const [, t] of trainer.optimizer.stateDict()) t.dispose();
  model.dispose();
  log(`${run.name}: done, ${run.phase === "tune" ? "held-out" : "test"} acc ${(100 * result.evalAccuracy).toFixed(2)}%` +
    `${result.cleanTrainAccuracy !== undefined ? `, clean train acc ${(100 * result.cleanTrainAccuracy).toFixed(2)}%` : ""}`);
}

/** Train every run of the grid, taking them in order and skipping those another live process holds. */
export async function work(recipe: Recipe, outDir: string, data: Data, pollSeconds: number, log: Log, tuneOnly: boolean): Promise<void> {
  for (;;) {
    const pending = pendingRuns(outDir, recipe);
    const runs = tuneOnly ? pending.runs.filter((run) => run.phase === "tune") : pending.runs;
    const waitingArms = tuneOnly ? [] : pending.waitingArms;
    const unfinished = runs.filter((run) => !existsSync(join(outDir, run.name, RESULT_FILE)));
    if (unfinished.length === 0 && waitingArms.length === 0) return;
    let trained = false;
    for (const run of unfinished) {
      const dir = join(outDir, run.name);
      mkdirSync(dir, { recursive: true });
      const release = tryClaim(dir);
      if (!release) continue;
      try {
        if (!existsSync(join(dir, RESULT_FILE))) {
          await trainRun(recipe, run, dir, data, log);
          trained = true;
        }
      } finally {
        release();
      }
      break; // back to the first unfinished run
    }
    if (!trained) {
      const held = unfinished.filter((run) => liveOwner(join(outDir, run.name)));
      log(`${held.length} run(s) held by other processes${waitingArms.length ? `; final runs of ${waitingArms.join(", ")} wait for their tuning` : ""}; looking again in ${pollSeconds} s`);
      await new Promise((resolve) => setTimeout(resolve, pollSeconds * 1000));
    }
  }
}
