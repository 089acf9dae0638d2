/** `retrograd eval`: test loss and accuracy of saved weights on a dataset's test split (the only split it reads). */
import * as rg from "../src/mod.ts";
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { evaluate } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { readBytes } from "./files.ts";
import { DATASET_NAMES, loadTestData } from "./datasets.ts";
import { WIDTH_FLAG } from "./train.ts";

export const EVAL_FLAGS: Flag[] = [
  { name: "model", type: "string", default: "resnet20", choices: MODEL_NAMES, help: "architecture of the weights" },
  WIDTH_FLAG,
  { name: "weights", type: "string", default: undefined, help: "safetensors state dict (model.safetensors of a run, or from PyTorch)" },
  { name: "dataset", type: "string", default: "fashion-mnist", choices: DATASET_NAMES, help: "dataset by name" },
  { name: "data", type: "string", default: undefined, help: "directory holding the dataset files" },
  { name: "batch-size", type: "int", default: 500, min: 1, help: "images per evaluation batch" },
  { name: "json", type: "boolean", default: false, help: "print the result as JSON" },
];

export async function evalCommand(flags: FlagValues): Promise<number> {
  const weights = flags.weights as string | undefined;
  if (!weights) throw new UsageError("eval needs --weights FILE");
  const bytes = await readBytes(weights, "--weights"); // before the data: a bad path is told at once
  const data = await loadTestData(flags.dataset as string, flags.data as string | undefined);
  const model = rg.models.createModel(flags.model as string, {
    inChannels: data.test.channels, numClasses: data.test.classes, imageSize: data.test.height, widthMultiplier: flags.width as number,
  });
  model.loadStateDict(rg.io.readSafetensors(bytes, weights));
  const r = await evaluate(model, data.test, { evalBatchSize: flags["batch-size"] as number, mean: data.mean, std: data.std });
  if (flags.json) process.stdout.write(JSON.stringify({ testLoss: r.loss, testAccuracy: r.accuracy, n: data.test.n }) + "\n");
  else process.stdout.write(`test loss ${r.loss.toFixed(4)}, test accuracy ${(100 * r.accuracy).toFixed(2)}% on ${data.test.n} images\n`);
  return 0;
}
