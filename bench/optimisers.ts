/**
 * The optimiser comparison of docs/optimisers.md, as a resumable grid: a model (an MLP, or
 * VGG-13 with BatchNorm on Fashion-MNIST padded to 32×32, as VGG's five max-pools need) at
 * a width multiplier, SGD against scale-amended SGD (Zhang, Chen & Liu, arXiv 1802.09750, as
 * derived in src/optim/scale_amended.ts), LARS, Adam, AdamW and LAMB (--arms). Two phases:
 *   tune:  each optimiser at each rate of its grid, one seed, a short run (--tune-epochs)
 *          trained on the first --train training images that are not among the last
 *          --held-out, and scored on those last --held-out (the test set plays no part in
 *          choosing);
 *   final: each optimiser at the rate with the best held-out accuracy, every seed, the first
 *          --train training images, --epochs, scored on the first --test test images.
 * Every run uses the same batch size, epochs and schedule (cosine with a linear warm-up, no
 * augmentation); the per-layer rates (factor and effective rate) are logged every --log-every
 * steps. Runs checkpoint each epoch and resume where they stopped; several processes share
 * the grid through claim files (bench/grid/claim.ts): start the same command again, or twice.
 *
 *   node build/optimisers.mjs [flags]            train (or resume) the grid (Deno: deno run -A bench/optimisers.ts)
 *   node build/optimisers.mjs [flags] --report   the tables (report.md) and plots from the finished runs
 *   node build/optimisers.mjs [flags] --export DIR   copy the finished runs' small files (no checkpoints) to DIR
 *
 * bench/optimisers/ holds the parts: spec (arms, recipe, runs, the tuned rate), run (training
 * one run, the work loop), report (tables and plots), lines (the step-axis charts).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { loadData } from "../cli/datasets.ts";
import { type Flag, helpText, parseFlags, UsageError } from "../cli/flags.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { logLine, runTool } from "./grid/entry.ts";
import { copyRunFiles } from "./grid/export.ts";
import { ARMS, LOG_FILE, pendingRuns, type Recipe, RESULT_FILE, TRAINING_SET_SIZE, tuneRuns, tuneTrainImages } from "./optimisers/spec.ts";
import { type Data, pad, work } from "./optimisers/run.ts";
import { writeReport } from "./optimisers/report.ts";

const FLAGS: Flag[] = [
  { name: "model", type: "string", default: "vgg13-bn", help: "model (a name createModel knows)" },
  { name: "width", type: "number", default: 0.125, min: 0, exclusiveMin: true, help: "width multiplier of the model" },
  { name: "arms", type: "list", default: ARMS.map((a) => a.optimizer).join(","), help: "the optimisers compared (their rate grids: bench/optimisers/spec.ts)" },
  { name: "padding", type: "int", default: 2, min: 0, help: "zero pixels around each 28×28 image (VGG needs 32×32)" },
  { name: "train", type: "int", default: TRAINING_SET_SIZE, min: 1, max: TRAINING_SET_SIZE, help: "final runs train on the first N training images" },
  { name: "held-out", type: "int", default: 10000, min: 1, max: TRAINING_SET_SIZE - 1, help: "tuning runs are scored on the last N training images and train on those before them (at most --train)" },
  { name: "test", type: "int", default: 10000, min: 1, max: 10000, help: "final runs are scored on the first N test images" },
  { name: "epochs", type: "int", default: 10, min: 1, help: "epochs of the final runs" },
  { name: "tune-epochs", type: "int", default: 2, min: 1, help: "epochs of the tuning runs" },
  { name: "seeds", type: "list", default: "0,1,2", help: "seeds of the final runs (the first also tunes)" },
  { name: "batch-size", type: "int", default: 128, min: 1, help: "images per step" },
  { name: "log-every", type: "int", default: 50, min: 1, help: "steps between records of the loss and the per-layer rates" },
  { name: "threads", type: "int", default: 1, min: 1, max: 256, help: "CPU threads of this process (results are the same for any count)" },
  { name: "out", type: "string", default: "runs/optimisers", help: "the grid's directory (one subdirectory per run)" },
  { name: "poll", type: "number", default: 60, min: 0, exclusiveMin: true, help: "seconds between looks while other processes hold the runs left" },
  { name: "phase", type: "string", default: "all", choices: ["tune", "all"], help: "tune: only the tuning runs (to look at them before the final runs start); all: tuning, then the final runs" },
  { name: "report", type: "boolean", default: false, help: "write the tables and plots (--docs) from the finished runs; train nothing" },
  { name: "docs", type: "string", default: "docs/optimisers", help: "with --report: where the plots go, as a file-name prefix (report.md goes beside the runs)" },
  { name: "export", type: "string", default: undefined, help: "copy the finished runs' config.json, result.json and steps.jsonl to this directory (a grid --report can read); train nothing" },
];

function recipeFrom(flags: ReturnType<typeof parseFlags>): Recipe {
  const list = (name: string) => (typeof flags[name] === "string" ? (flags[name] as string).split(",") : flags[name] as string[]);
  const seeds = list("seeds").map(Number);
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UsageError(`--seeds: integers ≥ 0, got ${list("seeds").join(",")}`);
  const names = list("arms");
  const unknown = names.find((name) => !ARMS.some((arm) => arm.optimizer === name));
  if (unknown !== undefined || names.length === 0) throw new UsageError(`--arms: names among ${ARMS.map((a) => a.optimizer).join(", ")}, got "${unknown ?? ""}"`);
  return {
    model: flags.model as string, width: flags.width as number, arms: ARMS.filter((arm) => names.includes(arm.optimizer)),
    padding: flags.padding as number, trainImages: flags.train as number, heldOut: flags["held-out"] as number, testImages: flags.test as number,
    epochs: flags.epochs as number, tuneEpochs: flags["tune-epochs"] as number,
    seeds, batchSize: flags["batch-size"] as number, logEvery: flags["log-every"] as number,
  };
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(helpText("optimisers", "train, resume or report the optimiser comparison (bench/optimisers.ts)", FLAGS));
    return 0;
  }
  const flags = parseFlags(argv, FLAGS);
  const recipe = recipeFrom(flags);
  const outDir = flags.out as string;
  const log = logLine;
  if (flags.report) {
    await writeReport(recipe, outDir, flags.docs as string, log);
    return 0;
  }
  if (flags.export) {
    const finished = pendingRuns(outDir, recipe).runs.filter((run) => existsSync(join(outDir, run.name, RESULT_FILE))).map((run) => run.name);
    await copyRunFiles(outDir, flags.export as string, finished, ["config.json", RESULT_FILE, LOG_FILE]);
    log(`export: copied ${finished.length} finished run(s) to ${flags.export}`);
    return 0;
  }
  installNodeThreads();
  const threads = await rg.setThreads(flags.threads as number);
  const loaded = await loadData("fashion-mnist", undefined, 0);
  const all = pad(loaded.train, recipe.padding);
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const first = (set: rg.data.Dataset, n: number, name: string) => (n < set.n ? rg.data.subset(set, range(0, n), name) : set);
  const data: Data = {
    train: first(all, recipe.trainImages, "fashion-mnist-train-first"), test: first(pad(loaded.test, recipe.padding), recipe.testImages, "fashion-mnist-test-first"),
    mean: loaded.mean, std: loaded.std,
    tuneTrain: first(all, tuneTrainImages(recipe), "fashion-mnist-train-tune"),
    heldOut: rg.data.subset(all, range(all.n - recipe.heldOut, all.n), "fashion-mnist-train-held-out"),
  };
  log(`optimiser grid in ${outDir}: ${recipe.model}@${recipe.width}, ${tuneRuns(recipe).length} tuning runs, then ${recipe.arms.length} × ${recipe.seeds.length} final runs; ${threads} thread(s)`);
  await work(recipe, outDir, data, flags.poll as number, log, flags.phase === "tune");
  log("every run has finished");
  await rg.setThreads(1); // let Deno exit: it stays alive while workers exist
  return 0;
}

await runTool("optimisers", main);
