/**
 * Probes never change the run they measure: a training run with every probe on, every step,
 * ends with bitwise the same weights, BatchNorm statistics, momentum buffers and metrics (every
 * step's loss, gradient norm and accuracy; every epoch's) as the same run without probes. On
 * models whose forward pass draws randomness (VGG's dropout, noisy BatchNorm) and on a ResNet,
 * whose fused BatchNorm→ReLU the activation probe's hooks switch off for the probe's pass. This
 * file runs under Node and under Deno; test/webgpu_probes.test.ts does the same on WebGPU.
 */
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { assertSameRun, probedRun } from "./support/probed_run.ts";

const data = {
  train: rg.data.synthetic({ n: 64, channels: 1, height: 28, width: 28, classes: 4, seed: 3 }),
  test: rg.data.synthetic({ n: 32, channels: 1, height: 28, width: 28, classes: 4, seed: 4 }),
};
const spec = { inChannels: 1, numClasses: 4, imageSize: 28, widthMultiplier: 0.0625 };

for (const [label, make, options] of [
  ["VGG-11 with noisy BatchNorm and dropout", () => rg.models.createModel("vgg11-bn", { ...spec, noisyBatchNorm: true }), {}],
  ["ResNet-20 (fused BatchNorm→ReLU), activations of a ReLU and a block", () => rg.models.createModel("resnet20", { ...spec, widthMultiplier: 0.125 }),
    { activationLayers: ["relu", "layer2.1", "layer1.0.bn1"] }],
] as const) {
  test(`${label}: every probe at every step, and the run ends with the same bits`, async () => {
    const plain = await probedRun(make, false, data);
    const probed = await probedRun(make, true, data, options);
    assertSameRun(probed, plain, 8);
  });
}

test.run();
