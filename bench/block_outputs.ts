/**
 * Which parts of a finished grid run (bench/powergrad.ts) still pass a signal: for the output of
 * every residual block (after its join's ReLU) and of every convolution, the share of positive
 * values over the first test images in eval mode, and how much the logits vary from image to
 * image. A block whose output is zero for every image cuts the network in two: everything after
 * it sees only biases, and the logits are the same for every input (chance accuracy with finite
 * weights: how PowerGrad's collapsed runs without BatchNorm died, docs/powergrad.md).
 *
 *   deno run -A bench/block_outputs.ts RUN_DIR [RUN_DIR ...] [--images N]
 */
import { readFileSync } from "node:fs";
import * as rg from "../src/mod.ts";
import { loadData } from "../cli/datasets.ts";
import { runTool } from "./grid/entry.ts";
import { UsageError } from "../cli/flags.ts";

interface RunConfig {
  model: string;
  width: number;
  dataset: string;
  train: { mean: number[]; std: number[] };
}

function measure(run: string, config: RunConfig, test: rg.data.Dataset, images: number): string[] {
  const model = rg.models.createModel(config.model, {
    inChannels: test.channels, numClasses: test.classes, imageSize: test.height, widthMultiplier: config.width,
  });
  model.loadStateDict(rg.io.readSafetensors(readFileSync(`${run}/model.safetensors`), `${run}/model.safetensors`));
  model.eval();
  const positive = new Map<string, number>();
  for (const [name, module] of model.namedModules()) {
    if (!(module instanceof rg.nn.Conv2d) && !/^layer\d+\.\d+$/.test(name)) continue;
    module.registerForwardHook((_module, _inputs, output) => {
      const values = output.dataSync();
      let count = 0;
      for (const v of values) if (v > 0) count++;
      positive.set(name, count / values.length);
    });
  }
  const loader = new rg.data.DataLoader(test, { batchSize: images, shuffle: false, mean: config.train.mean, std: config.train.std });
  const batch = loader.epoch().next().value!;
  const logits = rg.noGrad(() => model.forward(batch.x));
  const spread = logits.sub(logits.mean([0], true)).abs().max().item();
  const lines = [`## ${run}`, "", `logits: largest |z − mean over images| = ${spread.toPrecision(3)} over ${batch.labels.length} test images`, "",
    "| module | share of outputs > 0 |", "|---|---|"];
  for (const [name, share] of positive) lines.push(`| ${name} | ${share.toFixed(3)} |`);
  for (const t of [logits, batch.x]) t.dispose();
  return [...lines, ""];
}

async function main(argv: string[]): Promise<number> {
  const at = argv.indexOf("--images");
  const images = at < 0 ? 500 : Number(argv[at + 1]);
  if (!Number.isInteger(images) || images < 1) throw new UsageError(`--images: a positive integer, got ${argv[at + 1]}`);
  const runs = argv.filter((a, i) => !a.startsWith("--") && (at < 0 || i !== at + 1));
  if (runs.length === 0) throw new UsageError("give one or more run directories of a PowerGrad grid");
  for (const run of runs) {
    const config = JSON.parse(readFileSync(`${run}/config.json`, "utf8")) as RunConfig;
    const { test } = await loadData(config.dataset, undefined, 0);
    process.stdout.write(measure(run, config, test, images).join("\n") + "\n");
  }
  return 0;
}

await runTool("block_outputs", main);
