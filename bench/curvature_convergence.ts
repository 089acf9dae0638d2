/**
 * How far the curvature probe's top-eigenvalue estimate is from converged, for docs/batchnorm.md:
 * the probe stops power iteration after 20 steps (its default), which in the BatchNorm
 * experiment's VGG never met the 10⁻³ tolerance. This takes a finished run's final weights and
 * one Fashion-MNIST training batch of 128 (seed 0's order) and runs the probe's power iteration
 * (Hessian-vector products by central differences, src/analysis/curvature.ts) for 20 and for 60
 * steps from the same start. Not a timing: it prints one JSON line per count.
 *
 *   deno run -A bench/curvature_convergence.ts runs/batchnorm/bn-s0 vgg11-bn 0.125 0.1
 *
 * (Arguments: a run directory holding model.safetensors, the model, its width, the rate of the
 * update the probe pairs with the weights.)
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import * as rg from "../src/mod.ts";
import { axpy, disposeParams, snapshotParameters } from "../src/analysis/param_maps.ts";
import { BatchObjective } from "../src/analysis/objective.ts";
import { StepContext } from "../src/analysis/probed_step.ts";
import { topEigenvalue } from "../src/analysis/curvature.ts";
import { loadData } from "../cli/datasets.ts";

const [run, modelName, width, lr] = process.argv.slice(2);
await rg.setThreads(1);
const data = await loadData("fashion-mnist", undefined, 0);
rg.manualSeed(0);
const model = rg.models.createModel(modelName, { inChannels: 1, numClasses: 10, imageSize: 28, widthMultiplier: Number(width) });
model.loadStateDict(rg.io.readSafetensors(readFileSync(`${run}/model.safetensors`), run));
model.train(); // batch statistics, as in the training steps the probe measured
const loss = (logits: rg.Tensor, labels: Int32Array) => rg.crossEntropy(logits, labels);
const loader = new rg.data.DataLoader(data.train, { batchSize: 128, shuffle: true, dropLast: true, mean: data.mean, std: data.std });
const { x, labels } = loader.epoch().next().value!;
const batch = { x, labels, randomState: rg.getRandomState() };
const before = snapshotParameters(model);
const { loss: value, grads } = new BatchObjective(model, batch, loss).valueAndGrad(before);
const after = axpy(before, -Number(lr), grads);
value.dispose();
disposeParams(grads);
const ctx = new StepContext({ step: 1, epoch: 0, lr: Number(lr), model, batch, loss, before, after });
for (const iterations of [20, 60]) {
  const estimate = await topEigenvalue(ctx.objective, before, ctx.stream(0x70e1), { iterations, tolerance: 1e-4 });
  console.log(JSON.stringify({ run, steps: iterations, ...estimate }));
}
