/**
 * The Bayesian-initialisation experiment of docs/variants.md (nn/bayes_init.ts; Murru &
 * Rossini 2016): an MLP trained from three initialisations, each for every seed: PyTorch's
 * default (U(±1/√fan_in) weights), the Bayesian fusion of M such draws, and the default scaled
 * by √M/(M + 1), the spread the fusion gives independent draws (a control that separates the
 * fusion from its shrinking of the weights). Plain SGD (classical backprop), constant rate; the
 * test accuracy after every epoch. Each finished run writes DIR/<condition>-s<seed>.json; a run
 * whose file exists is skipped, so the command can be started again after an interruption.
 * Prints a Markdown table: epochs to reach each accuracy threshold (mean ± std over the seeds
 * that reached it) and the final accuracy.
 *
 *   deno run -A bench/bayes_init.ts --out runs/variants/bayes --seeds 0,1,2,3,4
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { loadData } from "../cli/datasets.ts";
import { writeAtomic } from "../cli/files.ts";
import { type Flag, parseFlags } from "../cli/flags.ts";

const FLAGS: Flag[] = [
  { name: "out", type: "string", default: "runs/variants/bayes", help: "where each run's JSON goes" },
  { name: "epochs", type: "int", default: 15, min: 1, help: "epochs per run" },
  { name: "batch-size", type: "int", default: 128, min: 1, help: "images per step" },
  { name: "lr", type: "number", default: 0.01, min: 0, exclusiveMin: true, help: "constant learning rate" },
  { name: "momentum", type: "number", default: 0, min: 0, max: 0.999, help: "momentum (0: classical backprop)" },
  { name: "draws", type: "int", default: 10, min: 1, help: "M: random draws fused per weight tensor" },
  { name: "seeds", type: "list", default: "0,1,2,3,4", help: "seeds" },
  { name: "thresholds", type: "list", default: "0.8,0.85", help: "test accuracies whose first epoch is reported" },
];

const flags = parseFlags(process.argv.slice(2), FLAGS);
const out = flags.out as string;
const seeds = (flags.seeds as string[]).map(Number);
const thresholds = (flags.thresholds as string[]).map(Number);
const m = flags.draws as number;
const CONDITIONS = ["default", "bayesian", "scaled-default"] as const;

await rg.setThreads(1);
const data = await loadData("fashion-mnist", undefined, 0);

for (const seed of seeds) {
  for (const condition of CONDITIONS) {
    const file = join(out, `${condition}-s${seed}.json`);
    if (existsSync(file)) continue;
    const config: rg.train.TrainConfig = {
      epochs: flags.epochs as number, steps: 0, batchSize: flags["batch-size"] as number, lr: flags.lr as number,
      momentum: flags.momentum as number, nesterov: false, weightDecay: 0, schedule: "constant", warmup: 0, powerGrad: 1,
      labelSmoothing: 0, seed, shuffle: true, augment: "none", mean: data.mean, std: data.std, evalBatchSize: 500,
    };
    rg.manualSeed(seed);
    const model = rg.models.createModel("mlp", { inChannels: 1, numClasses: 10, imageSize: 28 });
    if (condition === "bayesian") rg.nn.bayesianInit(model, { draws: m });
    if (condition === "scaled-default") {
      for (const [name, p] of model.namedParameters()) if (name.endsWith("weight")) p.mul_(Math.sqrt(m) / (m + 1));
    }
    const weightStd = Object.fromEntries([...model.namedParameters()].filter(([n]) => n.endsWith("weight")).map(([n, p]) => {
      const v = p.dataSync();
      return [n, Math.sqrt(v.reduce((a, b) => a + b * b, 0) / v.length)];
    }));
    const trainer = new rg.train.Trainer(model, data.train, data.test, config);
    const { history } = await trainer.run();
    await writeAtomic(file, JSON.stringify({ condition, seed, draws: m, config, weightStd, history }, null, 1) + "\n");
    process.stderr.write(`${condition} seed ${seed}: ${history.map((h) => (100 * h.testAccuracy).toFixed(1)).join(" ")}\n`);
    model.dispose();
  }
}

const meanStd = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return `${mean.toFixed(2)} ± ${sd.toFixed(2)}`;
};
const rows = CONDITIONS.map((condition) => {
  const runs = seeds.map((s) => join(out, `${condition}-s${s}.json`)).filter(existsSync)
    .map((f) => JSON.parse(readFileSync(f, "utf8")).history as { testAccuracy: number }[]);
  const reach = thresholds.map((t) => {
    const epochs = runs.map((h) => h.findIndex((r) => r.testAccuracy >= t) + 1).filter((e) => e > 0);
    return `${epochs.length ? meanStd(epochs) : "—"} (${epochs.length}/${runs.length}: ${runs.map((h) => h.findIndex((r) => r.testAccuracy >= t) + 1 || "–").join(" / ")})`;
  });
  return `| ${condition} | ${reach.join(" | ")} | ${meanStd(runs.map((h) => 100 * h[h.length - 1].testAccuracy))} |`;
});
console.log([
  `| initialisation | ${thresholds.map((t) => `epochs to ${100 * t} % (reached; per seed)`).join(" | ")} | final test accuracy % |`,
  `|---|${thresholds.map(() => "---|").join("")}---|`,
  ...rows,
].join("\n"));
