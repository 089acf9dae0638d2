/**
 * `retrograd export --onnx FILE --weights W [--model M] [--dataset D]`: saved weights to an
 * ONNX model for inference elsewhere (ONNX Runtime, TensorRT, OpenVINO, a browser). The
 * dataset fixes the input shape and class count; the graph takes normalised images,
 * (pixel/255 − mean)/std per channel, and the mean and std used in training are stored in the
 * model's metadata (and printed) so a deployment can normalise the same way.
 */
import * as rg from "../src/mod.ts";
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { readBytes, writeAtomic } from "./files.ts";
import { DATASET_NAMES, normalisationOf } from "./datasets.ts";
import { loadWeights } from "./saved_model.ts";

/** Each dataset's image shape and class count (its files are not needed to export). */
const DATASET_SHAPES: Record<string, { shape: [number, number, number]; classes: number }> = {
  "fashion-mnist": { shape: [1, 28, 28], classes: 10 },
  mnist: { shape: [1, 28, 28], classes: 10 },
  kmnist: { shape: [1, 28, 28], classes: 10 },
  synthetic: { shape: [1, 28, 28], classes: 10 },
  cifar10: { shape: [3, 32, 32], classes: 10 },
  cifar100: { shape: [3, 32, 32], classes: 100 },
};

export const EXPORT_FLAGS: Flag[] = [
  { name: "onnx", type: "string", default: undefined, help: "ONNX file to write" },
  { name: "weights", type: "string", default: undefined, help: "safetensors state dict (model.safetensors of a run, or from PyTorch)" },
  { name: "model", type: "string", default: "resnet20", choices: MODEL_NAMES, help: "architecture of the weights" },
  { name: "dataset", type: "string", default: "fashion-mnist", choices: DATASET_NAMES, help: "dataset the model was trained on (input shape, classes, normalisation)" },
  { name: "fold-batchnorm", type: "boolean", default: true, help: "fold each BatchNorm into the convolution before it" },
];

export async function exportCommand(flags: FlagValues): Promise<number> {
  const out = flags.onnx as string | undefined;
  const weights = flags.weights as string | undefined;
  if (!out) throw new UsageError("export needs --onnx FILE (the ONNX model to write)");
  if (!weights) throw new UsageError("export needs --weights FILE");
  const dataset = flags.dataset as string;
  const { shape, classes } = DATASET_SHAPES[dataset];
  const model = rg.models.createModel(flags.model as string, { inChannels: shape[0], numClasses: classes, imageSize: shape[1] });
  loadWeights(model, await readBytes(weights), weights, () => "export writes BatchNorm models only (ZCA whitening has no ONNX form here)");
  const { mean, std } = normalisationOf(dataset);
  const bytes = await rg.io.toOnnx(model, {
    inputShape: shape,
    foldBatchNorm: flags["fold-batchnorm"] as boolean,
    metadata: { model: flags.model as string, dataset, mean: JSON.stringify(mean), std: JSON.stringify(std) },
  });
  await writeAtomic(out, bytes);
  process.stdout.write(
    `wrote ${out} (${bytes.length} bytes, ONNX opset ${rg.io.ONNX_OPSET}): input "input" [N, ${shape.join(", ")}], ` +
      `normalised as (pixel/255 − mean)/std with mean ${JSON.stringify(mean)} and std ${JSON.stringify(std)}; output "logits" [N, ${classes}]\n`,
  );
  return 0;
}
