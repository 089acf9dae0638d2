/**
 * The PowerGrad experiment: baseline (α = 1) against PowerGrad α ∈ {0.25, 0.5} on
 * Fashion-MNIST, for ResNet-20 and the ResNet-18 without BatchNorm, several seeds each, the
 * same budget and schedule for every run. Prints a markdown table (train and test accuracy
 * and loss, mean ± std over seeds) and writes an overlay plot of every run's curves.
 *
 *   node build/powergrad.mjs (or deno run -A bench/powergrad.ts)
 *     [--models resnet20,resnet18-nonorm] [--alphas 1,0.25,0.5] [--seeds 0,1,2] [--epochs 3]
 *     [--subset 60000] [--test-subset 10000] [--batch-size 128] [--threads N] [--out runs/powergrad]
 *     [--report]
 *
 * Every run writes out/<model>-a<α>-s<seed>/metrics.jsonl as it ends, and the table and plot
 * are made from those files: the grid can be split over several processes (one thread each
 * uses two cores better than one process with two threads), and `--report` with the whole
 * grid's flags only reads the runs back and writes the table.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { loadData } from "../cli/datasets.ts";
import { writeAtomic } from "../cli/files.ts";
import type { EpochRecord, TrainConfig } from "../src/train/index.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const list = (name: string, fallback: string) => arg(name, fallback).split(",");

const models = list("models", "resnet20,resnet18-nonorm");
const alphas = list("alphas", "1,0.25,0.5").map(Number);
const seeds = list("seeds", "0,1,2").map(Number);
const epochs = Number(arg("epochs", "3"));
const subsetSize = Number(arg("subset", "60000"));
const testSubsetSize = Number(arg("test-subset", "10000"));
const batchSize = Number(arg("batch-size", "128"));
const outDir = arg("out", "runs/powergrad");
const reportOnly = args.includes("--report");
const runName = (model: string, alpha: number, seed: number) => `${model}-a${alpha}-s${seed}`;

installNodeThreads();
const threads = await rg.setThreads(arg("threads", "") ? Number(arg("threads", "")) : undefined);
const started = performance.now();
if (!reportOnly) {
  const data = await loadData("fashion-mnist", arg("data", "") || undefined, 0);
  const first = (set: rg.data.Dataset, n: number) => n < set.n ? rg.data.subset(set, Array.from({ length: n }, (_, i) => i)) : set;
  // The first `subset` training images: a smaller training set is easier to fit, which is
  // exactly where the paper says PowerGrad should not help; keep it in mind when reading.
  const train = first(data.train, subsetSize);
  const test = first(data.test, testSubsetSize);
  for (const model of models) {
    for (const alpha of alphas) {
      for (const seed of seeds) {
        const config: TrainConfig = {
          epochs, steps: 0, batchSize, lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
          schedule: "cosine", warmup: Math.min(1, epochs / 4), powerGrad: alpha, labelSmoothing: 0, seed,
          shuffle: true, augment: "standard", mean: data.mean, std: data.std, evalBatchSize: 500,
        };
        rg.manualSeed(seed);
        const net = rg.models.createModel(model, { inChannels: 1, numClasses: 10, imageSize: 28 });
        const trainer = new rg.train.Trainer(net, train, test, config);
        const { history } = await trainer.run();
        net.dispose();
        const last = history[history.length - 1];
        const name = runName(model, alpha, seed);
        await writeAtomic(join(outDir, name, "metrics.jsonl"), history.map((h) => JSON.stringify(h)).join("\n") + "\n");
        console.error(`${name}: test acc ${(100 * last.testAccuracy).toFixed(2)}%, train acc ${(100 * last.trainAccuracy).toFixed(2)}% ` +
          `(${((performance.now() - started) / 60000).toFixed(1)} min so far)`);
      }
    }
  }
}

interface Result { model: string; alpha: number; seed: number; last: EpochRecord; history: EpochRecord[] }
const results: Result[] = [];
for (const model of models) {
  for (const alpha of alphas) {
    for (const seed of seeds) {
      const file = join(outDir, runName(model, alpha, seed), "metrics.jsonl");
      const text = await readFile(file, "utf8").catch(() => {
        throw new Error(`powergrad: no run ${runName(model, alpha, seed)} (${file} is missing); train it first`);
      });
      const history = text.trim().split("\n").map((line) => JSON.parse(line) as EpochRecord);
      results.push({ model, alpha, seed, last: history[history.length - 1], history });
    }
  }
}

const meanStd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return { m, s };
};
const fmt = (xs: number[], scale = 1, digits = 2) => {
  const { m, s } = meanStd(xs.map((x) => x * scale));
  return `${m.toFixed(digits)} ± ${s.toFixed(digits)}`;
};
const rows = ["| model | α | train acc % | test acc % | train loss | test loss |", "|---|---|---|---|---|---|"];
for (const model of models) {
  for (const alpha of alphas) {
    const rs = results.filter((r) => r.model === model && r.alpha === alpha).map((r) => r.last);
    rows.push(`| ${model} | ${alpha === 1 ? "1 (baseline)" : alpha} | ${fmt(rs.map((r) => r.trainAccuracy), 100)} | ` +
      `${fmt(rs.map((r) => r.testAccuracy), 100)} | ${fmt(rs.map((r) => r.trainLoss), 1, 4)} | ${fmt(rs.map((r) => r.testLoss), 1, 4)} |`);
  }
}
const table = rows.join("\n");
const command = `node build/powergrad.mjs ${args.join(" ")}`.trim();
console.log(`${table}\n\n${seeds.length} seeds per row, ${epochs} epochs on the first ${subsetSize} training images, ` +
  `tested on the first ${testSubsetSize}, batch ${batchSize}; ` +
  (reportOnly ? "read back from the runs' files." : `${threads} threads, ${((performance.now() - started) / 60000).toFixed(1)} min in this process.`) +
  `\nCommand: ${command}`);
// One overlay per α, averaged over seeds, so the plot stays readable.
const runs = models.flatMap((model) => alphas.map((alpha) => {
  const group = results.filter((r) => r.model === model && r.alpha === alpha);
  const history = group[0].history.map((_, e) => {
    const avg = (key: keyof EpochRecord) => group.reduce((a, r) => a + (r.history[e][key] as number), 0) / group.length;
    return { epoch: e + 1, trainLoss: avg("trainLoss"), testLoss: avg("testLoss"), trainAccuracy: avg("trainAccuracy"), testAccuracy: avg("testAccuracy") };
  });
  return { name: `${model} α=${alpha} (mean of ${group.length} seeds)`, history };
}));
await writeAtomic(join(outDir, "powergrad.svg"), rg.io.renderCurves(runs));
await writeAtomic(join(outDir, "table.md"), `${table}\n\nCommand: \`${command}\`\n`);
await rg.setThreads(1); // let Deno exit: it stays alive while workers exist
