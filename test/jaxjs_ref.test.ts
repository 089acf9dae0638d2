/**
 * The bench's jax-js peer (bench/jaxjs_ref.ts, `--vs-jaxjs`) times the same network as ours:
 * with retrograd's initialised ResNet-20 weights copied in, jax-js's training steps on its
 * WebGPU device see retrograd's CPU training-mode losses, and after two SGD steps (momentum,
 * weight decay, the BatchNorm running statistics; a learning rate and weight decay larger
 * than the bench's so that each term moves the numbers beyond the tolerance) its evaluation
 * logits are retrograd's. One perturbed weight moves the loss well beyond the tolerance, so
 * the check can tell networks apart. Runs where WebGPU exists (Deno on lavapipe; skipped
 * under Node). And models its forward pass would run differently are refused, with the name
 * it has no rule for.
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { loadJaxjs, notUnderstood, weightsOf } from "../bench/jaxjs_ref.ts";
import { gpu } from "./support/gpu.ts";
import { assertClose } from "./helpers.ts";

const BATCH = 4, SIZE = 8, LABELS = [3, 7, 0, 9];
const SGD = { lr: 0.1, momentum: 0.9, weightDecay: 0.05 };
const LOSS_RTOL = 1e-4;

const jaxjsTest = gpu ? test : test.skip;

function closeLoss(actual: number, expected: number, label: string): void {
  assert.ok(Math.abs(actual - expected) <= LOSS_RTOL * expected, `${label}: jax-js ${actual}, retrograd ${expected}`);
}

jaxjsTest("jax-js ResNet-20 with retrograd's weights: the same training losses over two SGD steps, then the same evaluation logits", async () => {
  const jaxjs = await loadJaxjs("webgpu", SGD);
  assert.ok(jaxjs, "jax-js starts its WebGPU device where retrograd's does");
  rg.manualSeed(0);
  const net = rg.models.resnet20({ inChannels: 3, numClasses: 10 });
  const x = rg.randn([BATCH, 3, SIZE, SIZE]);
  const weights = await weightsOf(net);
  const batch = jaxjs.batchOf(x.dataSync(), [BATCH, 3, SIZE, SIZE], LABELS, 10);

  const opt = new rg.optim.SGD(net.parameters(), SGD);
  const losses = [0, 1].map(() => {
    opt.zeroGrad();
    const loss = rg.crossEntropy(net.forward(x), LABELS);
    loss.backward();
    opt.step();
    return loss.dataSync()[0];
  });
  net.eval();
  const logits = rg.noGrad(() => net.forward(x));

  const model = new jaxjs.JaxResNet(weights);
  for (const [i, expected] of losses.entries()) closeLoss((await model.step(batch.x, batch.oneHot).data())[0], expected, `loss before step ${i + 1}`);
  assertClose(await model.logits(batch.x).data(), logits, "evaluation logits after two SGD steps", { rtol: 1e-4, atol: 1e-4 });
  model.dispose();

  // Twice the γ of one channel deep in the network: the check must see it.
  weights.params["layer3.1.bn1.weight"].values[0] *= 2;
  const perturbed = new jaxjs.JaxResNet(weights);
  const perturbedLoss = (await perturbed.step(batch.x, batch.oneHot).data())[0];
  perturbed.dispose();
  assert.ok(Math.abs(perturbedLoss - losses[0]) > 10 * LOSS_RTOL * losses[0], `perturbed loss ${perturbedLoss} vs ${losses[0]}`);
  batch.x.dispose();
  batch.oneHot.dispose();
});

test("jax-js reference: runs the CIFAR ResNets of basic blocks, refuses what its forward pass would run differently", async () => {
  const why = async (model: rg.nn.Module) => {
    const reason = notUnderstood(await weightsOf(model));
    model.dispose();
    return reason;
  };
  const small = { widthMultiplier: 0.125 };
  assert.is(await why(rg.models.resnet20(small)), null);
  assert.is(await why(rg.models.resnet18({ ...small, stem: "cifar" })), null);
  assert.match(await why(rg.models.resnet18(small)) ?? "", "not a CIFAR-stem ResNet (a 3×3 conv1 and bn1): conv1.weight is [8,3,7,7]");
  assert.match(await why(rg.models.resnet50({ ...small, stem: "cifar" })) ?? "", 'no rule for "layer1.0.conv3.weight"');
  assert.match(await why(rg.models.resnet20NoNorm(small)) ?? "", 'no rule for "conv1.bias"');
  assert.match(await why(rg.models.resnet20({ ...small, se: true })) ?? "", 'no rule for "layer1.0.se.fc1.weight"');
});

test.run();
