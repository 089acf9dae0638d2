/**
 * The pipelined-backprop experiment of docs/variants.md (optim/pipelined.ts; Kosson et al.,
 * arXiv 2003.11666): one model trained with small batches under five optimisers, each for
 * every seed: SGD with momentum (no pipeline), the simulated pipeline without mitigation, with
 * Spike Compensation, with Linear Weight Prediction, and with both. One stage per layer, stage
 * s of S delayed 2·(S − 1 − s) steps. Each finished run writes DIR/<condition>-s<seed>.json
 * (its epoch records, test accuracy after each epoch on the latest weights, or with
 * `--evaluate forward` on the stale forward weights, DIR/<condition>-forward-s<seed>.json); a run whose file
 * exists is skipped, so the command can be started again after an interruption. Prints a
 * Markdown table of the finished runs (mean ± std of the final test accuracy) on stdout.
 *
 *   deno run -A bench/pipelined.ts --out runs/variants/pipelined --steps 600 --batch-size 8
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { loadData } from "../cli/datasets.ts";
import { writeAtomic } from "../cli/files.ts";
import { type Flag, parseFlags } from "../cli/flags.ts";

const FLAGS: Flag[] = [
  { name: "out", type: "string", default: "runs/variants/pipelined", help: "where each run's JSON goes" },
  { name: "model", type: "string", default: "resnet20", help: "model" },
  { name: "width", type: "number", default: 0.25, min: 0, exclusiveMin: true, help: "width multiplier" },
  { name: "steps", type: "int", default: 600, min: 1, help: "optimiser steps per run" },
  { name: "epochs", type: "int", default: 3, min: 1, help: "evaluations: the steps are split into this many epochs of a training subset" },
  { name: "batch-size", type: "int", default: 8, min: 1, help: "images per step" },
  { name: "lr", type: "number", default: 0.02, min: 0, exclusiveMin: true, help: "constant learning rate" },
  { name: "momentum", type: "number", default: 0.9, min: 0, max: 0.999, help: "momentum" },
  { name: "seeds", type: "list", default: "0,1,2", help: "seeds" },
  { name: "test-subset", type: "int", default: 2000, min: 1, help: "test images evaluated after each epoch" },
  {
    name: "evaluate", type: "string", default: "latest", choices: ["latest", "forward"],
    help: "the pipelined runs' evaluation weights: the latest (the optimiser's) or the stale forward weights the BatchNorm statistics were gathered with (files *-forward-s<seed>.json; SGD is not rerun)",
  },
];

const CONDITIONS = {
  sgd: null,
  pipelined: { spikeCompensation: false, linearWeightPrediction: false },
  sc: { spikeCompensation: true, linearWeightPrediction: false },
  lwp: { spikeCompensation: false, linearWeightPrediction: true },
  "sc+lwp": { spikeCompensation: true, linearWeightPrediction: true },
} as const;

const flags = parseFlags(process.argv.slice(2), FLAGS);
const out = flags.out as string;
const seeds = (flags.seeds as string[]).map(Number);
const batchSize = flags["batch-size"] as number, steps = flags.steps as number, epochs = flags.epochs as number;
await rg.setThreads(1);
const evaluateForward = flags.evaluate === "forward";
const runName = (condition: string, seed: number) => `${condition}${evaluateForward ? "-forward" : ""}-s${seed}.json`;
const data = await loadData("fashion-mnist", undefined, 0);
const first = (set: rg.data.Dataset, n: number) => rg.data.subset(set, Array.from({ length: Math.min(n, set.n) }, (_, i) => i));
// Each epoch is a pass over a subset of steps/epochs batches, so the run evaluates `epochs` times.
const train = first(data.train, batchSize * Math.ceil(steps / epochs));
const test = first(data.test, flags["test-subset"] as number);

for (const seed of seeds) {
  for (const [condition, pipeline] of Object.entries(CONDITIONS)) {
    const file = join(out, runName(condition, seed));
    if (existsSync(file) || (evaluateForward && !pipeline)) continue;
    const config: rg.train.TrainConfig = {
      epochs, steps, batchSize, lr: flags.lr as number, momentum: flags.momentum as number, nesterov: false, weightDecay: 0,
      schedule: "constant", warmup: 0, powerGrad: 1, labelSmoothing: 0, seed, shuffle: true, augment: "none",
      mean: data.mean, std: data.std, evalBatchSize: 500,
    };
    rg.manualSeed(seed);
    const model = rg.models.createModel(flags.model as string, {
      inChannels: 1, numClasses: 10, imageSize: 28, widthMultiplier: flags.width as number,
    });
    const optimizer = (m: rg.nn.Module, c: rg.train.TrainConfig): rg.optim.Optimizer => pipeline
      // An own `evaluationWeights: undefined` hides the method: the trainer then evaluates the forward weights.
      ? Object.assign(new rg.optim.PipelinedSGD(rg.optim.layerStages(m), { lr: c.lr, momentum: c.momentum, ...pipeline }), evaluateForward ? { evaluationWeights: undefined } : {})
      : new rg.optim.SGD(m.parameters(), { lr: c.lr, momentum: c.momentum });
    const trainer = new rg.train.Trainer(model, train, test, config, optimizer);
    const started = performance.now();
    const { history } = await trainer.run();
    const stages = trainer.optimizer.paramGroups.length;
    await writeAtomic(file, JSON.stringify({ condition, seed, config, stages, seconds: (performance.now() - started) / 1000, history }, null, 1) + "\n");
    process.stderr.write(`${condition} seed ${seed}: test accuracy ${(100 * history[history.length - 1].testAccuracy).toFixed(2)} %\n`);
    model.dispose();
  }
}

const rows = Object.keys(CONDITIONS).map((condition) => {
  const finals = seeds.map((s) => join(out, condition === "sgd" ? `sgd-s${s}.json` : runName(condition, s))).filter(existsSync)
    .map((f) => JSON.parse(readFileSync(f, "utf8")).history.at(-1).testAccuracy as number);
  const mean = finals.reduce((a, b) => a + b, 0) / Math.max(1, finals.length);
  const sd = finals.length > 1 ? Math.sqrt(finals.reduce((a, b) => a + (b - mean) ** 2, 0) / (finals.length - 1)) : 0;
  return `| ${condition} | ${finals.length} | ${(100 * mean).toFixed(2)} ± ${(100 * sd).toFixed(2)} | ${finals.map((a) => (100 * a).toFixed(2)).join(", ")} |`;
});
console.log(["| condition | seeds | final test accuracy % | per seed |", "|---|---|---|---|", ...rows].join("\n"));
await rg.setThreads(1);
