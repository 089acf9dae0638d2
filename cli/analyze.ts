/**
 * `retrograd analyze`: the probes of the backward pass (src/analysis/probes.ts) on saved
 * weights, one call away: `retrograd analyze RUN_DIR` (the run's model, width, dataset, loss and
 * learning rate, and its model.safetensors), or `--model … --weights FILE`. Each of `--batches`
 * training batches (seeded, shuffled, not augmented) is one measurement at the given weights,
 * in training mode (BatchNorm by batch statistics, as in training); where a probe needs an
 * update (the update ratio, internal covariate shift) it is a plain SGD step W − η·∇L with
 * η = --lr. The weights are never changed. Records go to stdout as JSON lines (or --out).
 */
import * as rg from "../src/mod.ts";
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { PROBE_NAMES, type ProbeRecord } from "../src/analysis/probes.ts";
import { axpy, disposeParams, snapshotParameters } from "../src/analysis/param_maps.ts";
import { BatchObjective } from "../src/analysis/objective.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { readBytes, writeAtomic } from "./files.ts";
import { DATASET_NAMES, loadData } from "./datasets.ts";
import { createModelOrExplain, loadWeights, readRunDirectory, runWeights } from "./saved_model.ts";
import { selectBackend } from "./backend.ts";
import { WIDTH_FLAG } from "./train.ts";
import { checkProbeLayers, prober } from "./probes.ts";

export const ANALYZE_FLAGS: Flag[] = [
  { name: "probe", type: "string", default: "all", help: `probes to run: a list of ${PROBE_NAMES.join(", ")}, or all` },
  { name: "model", type: "string", default: undefined, choices: MODEL_NAMES, help: "architecture of --weights (default: the run's)" },
  WIDTH_FLAG,
  { name: "weights", type: "string", default: undefined, help: "safetensors state dict (default: the run's model.safetensors)" },
  { name: "dataset", type: "string", default: undefined, choices: DATASET_NAMES, help: "dataset whose training batches are measured (default: the run's, else fashion-mnist)" },
  { name: "data", type: "string", default: undefined, help: "directory holding the dataset files" },
  { name: "batches", type: "int", default: 1, min: 1, help: "training batches to measure, one record set each" },
  { name: "batch-size", type: "int", default: 128, min: 1, help: "images per batch" },
  { name: "lr", type: "number", default: undefined, min: 0, exclusiveMin: true, help: "η of the landscape grid and of the update (default: the run's peak rate, else 0.1)" },
  { name: "powergrad", type: "number", default: undefined, min: 0, exclusiveMin: true, max: 1, help: "PowerGrad α of the loss's gradient (default: the run's, else 1)" },
  { name: "seed", type: "int", default: 0, min: 0, max: 0xffffffff, help: "seed of the batch order" },
  { name: "probe-layers", type: "list", default: undefined, help: "modules whose outputs the activations probe summarises" },
  { name: "backend", type: "string", default: "cpu", choices: ["cpu", "auto", "webgpu"], help: "compute backend" },
  { name: "threads", type: "int", default: undefined, min: 1, max: 256, help: "CPU threads (default: every core)" },
  { name: "out", type: "string", default: undefined, help: "write the records to this file (default: stdout)" },
];

/** What to measure: from the run directory's config.json, then the flags over it. */
async function resolve(flags: FlagValues & { _: string[]; _given: string[] }) {
  const runDir = flags._[0];
  if (flags._.length > 1) throw new UsageError(`analyze takes one run directory, got ${flags._.length}: ${flags._.join(" ")}`);
  const run = runDir ? await readRunDirectory(runDir, "analyze") : null;
  const model = (flags.model as string | undefined) ?? run?.model;
  if (!model) throw new UsageError("analyze needs a run directory, or --model and --weights");
  const weights = (flags.weights as string | undefined) ?? (runDir ? await runWeights(runDir, "analyze") : undefined);
  if (!weights) throw new UsageError("analyze needs --weights FILE with --model");
  return {
    model, weights,
    width: flags._given.includes("width") || !run ? flags.width as number : run.width ?? 1,
    noisyBatchNorm: run?.noisyBatchNorm ?? false,
    zca: run?.zca,
    dataset: (flags.dataset as string | undefined) ?? run?.dataset ?? "fashion-mnist",
    data: (flags.data as string | undefined) ?? run?.data,
    lr: (flags.lr as number | undefined) ?? run?.train.lr ?? 0.1,
    powerGrad: (flags.powergrad as number | undefined) ?? run?.train.powerGrad ?? 1,
    labelSmoothing: run?.train.labelSmoothing ?? 0,
  };
}

export async function analyze(flags: FlagValues & { _: string[]; _given: string[] }): Promise<number> {
  const what = await resolve(flags);
  const spec = flags.probe as string;
  if (spec.includes("@")) throw new UsageError(`--probe: analyze measures every probe on each batch; "${spec}" has a period (@k), which only train --probe takes`);
  const layers = flags["probe-layers"] as string[] | undefined;
  const probes = prober({ spec, every: 1, layers });
  const bytes = await readBytes(what.weights, "--weights");
  const backend = await selectBackend(flags.backend as string);
  if (backend === "cpu") await rg.setThreads(flags.threads as number | undefined);
  const data = await loadData(what.dataset, what.data, flags.seed as number);
  rg.manualSeed(flags.seed as number);
  const model = createModelOrExplain(what, data.train);
  loadWeights(model, bytes, what.weights, () => "give the directory of the run that trained them (retrograd analyze RUN_DIR): its config.json records the normalisation");
  model.train(); // batch statistics, as the training steps the probes describe
  checkProbeLayers(model, layers);
  const names = PROBE_NAMES.filter((name) => probes.schedule.has(name));
  const loss = (logits: rg.Tensor, labels: Int32Array) => rg.crossEntropy(logits, labels, { powerGrad: what.powerGrad, labelSmoothing: what.labelSmoothing });
  const loader = new rg.data.DataLoader(data.train, { batchSize: flags["batch-size"] as number, shuffle: true, dropLast: true, mean: data.mean, std: data.std });
  const records: ProbeRecord[] = [];
  let index = 0;
  for (const { x, labels } of loader.epoch()) {
    index++;
    const batch = { x, labels, randomState: rg.getRandomState() };
    const before = snapshotParameters(model);
    const { loss: value, grads } = new BatchObjective(model, batch, loss).valueAndGrad(before);
    const after = axpy(before, -what.lr, grads);
    value.dispose();
    disposeParams(grads);
    records.push(...await probes.measure({ step: index, epoch: 0, lr: what.lr, model, batch, loss, before, after }, names));
    for (const map of [before, after]) disposeParams(map);
    x.dispose();
    if (index === flags.batches) break;
  }
  const text = records.map((r) => rg.io.stringifyRecord(r) + "\n").join("");
  if (flags.out) await writeAtomic(flags.out as string, text, "--out");
  else process.stdout.write(text);
  return 0;
}
