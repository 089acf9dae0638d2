/**
 * What the optimiser comparison is (bench/optimisers.ts): the arms (each optimiser with its
 * rate grid and settings), the recipe every run shares (model, data sizes, epochs, which
 * arms), the runs' names and what a finished run records, and how the tuning phase picks each
 * arm's rate (the best held-out accuracy).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type * as rg from "../../src/mod.ts";
import type { OptimizerName, OptimizerSettings } from "../../src/optim/build.ts";
import type { TrainConfig } from "../../src/train/index.ts";

/** One optimiser of the comparison: its rate grid and its own settings (weight decay, trust coefficient). */
export interface Arm {
  optimizer: OptimizerName;
  lrs: readonly number[];
  weightDecay: number;
  settings: Omit<OptimizerSettings, "name">;
}

/**
 * The arms, each with four rates about 3× apart. Weight decay 5e-4 (L2, in the gradient) for
 * the SGD family and Adam; AdamW's decoupled 0.05 shrinks the weights by lr·0.05 per step,
 * which at its usual rate 1e-3 is SGD's 0.1·5e-4; LAMB's decoupled 0.01 is timm's default.
 * LARS's trust coefficient 0.02 puts its rates in SGD's range (only lr × coefficient matters
 * where the trust ratio applies; the rate itself is what parameters with a zero norm,
 * BatchNorm's β and the zero-initialised biases, get on their first step).
 */
export const ARMS: readonly Arm[] = [
  { optimizer: "sgd", lrs: [0.01, 0.03, 0.1, 0.3], weightDecay: 5e-4, settings: {} },
  { optimizer: "scale-amended", lrs: [0.01, 0.03, 0.1, 0.3], weightDecay: 5e-4, settings: {} },
  { optimizer: "lars", lrs: [0.03, 0.1, 0.3, 1], weightDecay: 5e-4, settings: { trustCoef: 0.02 } },
  { optimizer: "adam", lrs: [3e-4, 1e-3, 3e-3, 1e-2], weightDecay: 5e-4, settings: {} },
  { optimizer: "adamw", lrs: [3e-4, 1e-3, 3e-3, 1e-2], weightDecay: 0.05, settings: {} },
  { optimizer: "lamb", lrs: [1e-3, 3e-3, 1e-2, 3e-2], weightDecay: 0.01, settings: {} },
];

export interface Recipe {
  model: string;
  width: number;
  /** The arms compared (a subset of ARMS, in ARMS' order). */
  arms: readonly Arm[];
  /** Zero padding around each 28×28 image (2 for VGG, whose five max-pools need 32×32). */
  padding: number;
  /** Final runs train on the first trainImages training images. */
  trainImages: number;
  /** Tuning runs are scored on the last heldOut training images and train on those before them (at most trainImages). */
  heldOut: number;
  /** Final runs are scored on the first testImages test images. */
  testImages: number;
  epochs: number;
  tuneEpochs: number;
  seeds: readonly number[];
  batchSize: number;
  logEvery: number;
}

/** Fashion-MNIST's training images. */
export const TRAINING_SET_SIZE = 60000;

/** How many images the tuning runs train on: those before the held-out split, at most trainImages. */
export function tuneTrainImages(recipe: Recipe): number {
  return Math.min(recipe.trainImages, TRAINING_SET_SIZE - recipe.heldOut);
}

export interface Run {
  name: string;
  phase: "tune" | "final";
  arm: Arm;
  lr: number;
  seed: number;
}

export const RESULT_FILE = "result.json";
export const CHECKPOINT_FILE = "checkpoint.safetensors";
/** Per run: a JSON line every --log-every steps (mean batch loss since the last line, rate, each layer's rate and factor). */
export const LOG_FILE = "steps.jsonl";

export function runName(phase: Run["phase"], optimizer: string, lr: number, seed: number): string {
  return `${phase}-${optimizer}-lr${lr}-seed${seed}`;
}

export function tuneRuns(recipe: Recipe): Run[] {
  return recipe.arms.flatMap((arm) => arm.lrs.map((lr) => ({ name: runName("tune", arm.optimizer, lr, recipe.seeds[0]), phase: "tune" as const, arm, lr, seed: recipe.seeds[0] })));
}

/** What a finished run records. */
export interface RunResult {
  identity: ReturnType<typeof identity>;
  /** The run stopped on a non-finite loss or gradient (its figures are then NaN). */
  diverged: boolean;
  history: rg.train.EpochRecord[];
  /** Tune: the held-out split; final: the test set. */
  evalAccuracy: number;
  evalLoss: number;
  /** Final runs: one pass over their training images in eval mode. */
  cleanTrainAccuracy?: number;
  cleanTrainLoss?: number;
}

/** The held-out accuracy of each rate of an arm, or null while some tuning run is unfinished. */
export function tunedLr(outDir: string, recipe: Recipe, arm: Arm): { lr: number; scores: Map<number, number> } | null {
  const scores = new Map<number, number>();
  for (const lr of arm.lrs) {
    const path = join(outDir, runName("tune", arm.optimizer, lr, recipe.seeds[0]), RESULT_FILE);
    if (!existsSync(path)) return null;
    const result = JSON.parse(readFileSync(path, "utf8")) as RunResult;
    scores.set(lr, result.diverged ? -Infinity : result.evalAccuracy);
  }
  // The best held-out accuracy; a tie goes to the smaller rate.
  const lr = [...scores].reduce((best, cur) => (cur[1] > best[1] ? cur : best))[0];
  return { lr, scores };
}

export function trainConfig(recipe: Recipe, run: Run, data: { mean: number[]; std: number[] }): TrainConfig {
  return {
    epochs: run.phase === "tune" ? recipe.tuneEpochs : recipe.epochs, steps: 0, batchSize: recipe.batchSize,
    lr: run.lr, momentum: 0.9, nesterov: true, weightDecay: run.arm.weightDecay, schedule: "cosine", warmup: 0.2,
    powerGrad: 1, labelSmoothing: 0, seed: run.seed, shuffle: true, augment: "none", mean: data.mean, std: data.std,
    evalBatchSize: 500, optimizer: { name: run.arm.optimizer, ...run.arm.settings },
  };
}

export function identity(recipe: Recipe, run: Run, train: TrainConfig) {
  return {
    name: run.name, phase: run.phase, model: recipe.model, width: recipe.width, dataset: "fashion-mnist", padding: recipe.padding,
    trainImages: run.phase === "tune" ? tuneTrainImages(recipe) : recipe.trainImages,
    evalSet: run.phase === "tune" ? `the last ${recipe.heldOut} training images` : `the first ${recipe.testImages} test images`, train,
  };
}

/** The runs to do now: every tuning run, and the final runs of the arms whose tuning is done. */
export function pendingRuns(outDir: string, recipe: Recipe): { runs: Run[]; waitingArms: string[] } {
  const runs = tuneRuns(recipe);
  const waitingArms: string[] = [];
  for (const seed of recipe.seeds) {
    for (const arm of recipe.arms) {
      const tuned = tunedLr(outDir, recipe, arm);
      if (!tuned) {
        if (seed === recipe.seeds[0]) waitingArms.push(arm.optimizer);
        continue;
      }
      runs.push({ name: runName("final", arm.optimizer, tuned.lr, seed), phase: "final", arm, lr: tuned.lr, seed });
    }
  }
  return { runs, waitingArms };
}
