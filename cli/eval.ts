/**
 * `retrograd eval [RUN_DIR]`: test loss and accuracy of saved weights on a dataset's test split
 * (the only split it reads). Given a run directory, the model is rebuilt as its config.json
 * records it (model, width, normalisation: BatchNorm or ZCA whitening, BatchNorm noise) and
 * loaded from its model.safetensors, on the run's dataset; flags given beside it override those.
 * Without one, --model, --width, --norm and --weights say what to rebuild.
 */
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { evaluate } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { readBytes } from "./files.ts";
import { DATASET_NAMES, loadTestData } from "./datasets.ts";
import { WIDTH_FLAG } from "./train.ts";
import { type Architecture, createModelOrExplain, loadWeights, readRunDirectory, runWeights } from "./saved_model.ts";

export const EVAL_FLAGS: Flag[] = [
  { name: "model", type: "string", default: undefined, choices: MODEL_NAMES, help: "architecture of the weights (default: the run's, else resnet20)" },
  WIDTH_FLAG,
  {
    name: "norm", type: "string", default: undefined, choices: ["bn", "zca"],
    help: "the weights' normalisation: bn (BatchNorm) or zca (ZCA whitening in BatchNorm's place, as train --norm zca) (default: the run's, else bn)",
  },
  { name: "weights", type: "string", default: undefined, help: "safetensors state dict (default: the run's model.safetensors; or from PyTorch)" },
  { name: "dataset", type: "string", default: undefined, choices: DATASET_NAMES, help: "dataset by name (default: the run's, else fashion-mnist)" },
  { name: "data", type: "string", default: undefined, help: "directory holding the dataset files (default: the run's)" },
  { name: "batch-size", type: "int", default: 500, min: 1, help: "images per evaluation batch" },
  { name: "json", type: "boolean", default: false, help: "print the result as JSON" },
];

export async function evalCommand(flags: FlagValues & { _: string[]; _given: string[] }): Promise<number> {
  if (flags._.length > 1) throw new UsageError(`eval takes one run directory, got ${flags._.length}: ${flags._.join(" ")}`);
  const runDir = flags._[0] as string | undefined;
  const run = runDir ? await readRunDirectory(runDir, "eval") : null;
  const weights = (flags.weights as string | undefined) ?? (runDir ? await runWeights(runDir, "eval") : undefined);
  if (!weights) throw new UsageError("eval needs a run directory, or --weights FILE");
  const norm = (flags.norm as "bn" | "zca" | undefined) ?? (run?.zca ? "zca" : "bn");
  const architecture: Architecture = {
    model: (flags.model as string | undefined) ?? run?.model ?? "resnet20",
    width: flags._given.includes("width") || !run ? flags.width as number : run.width,
    noisyBatchNorm: run?.noisyBatchNorm,
    // The backward rule does not change the evaluation; the run's is kept for a faithful rebuild.
    ...(norm === "zca" ? { zca: run?.zca ?? { backward: "power-iteration" } } : {}),
  };
  const bytes = await readBytes(weights, "--weights"); // before the data: a bad path is told at once
  const data = await loadTestData((flags.dataset as string | undefined) ?? run?.dataset ?? "fashion-mnist", (flags.data as string | undefined) ?? run?.data);
  const model = createModelOrExplain(architecture, data.test);
  loadWeights(model, bytes, weights, (held) => `evaluate them with --norm ${held}, or give the directory of the run that trained them (retrograd eval RUN_DIR)`);
  const r = await evaluate(model, data.test, { evalBatchSize: flags["batch-size"] as number, mean: data.mean, std: data.std });
  if (flags.json) process.stdout.write(JSON.stringify({ testLoss: r.loss, testAccuracy: r.accuracy, n: data.test.n }) + "\n");
  else process.stdout.write(`test loss ${r.loss.toFixed(4)}, test accuracy ${(100 * r.accuracy).toFixed(2)}% on ${data.test.n} images\n`);
  return 0;
}
