/// <reference types="@webgpu/types" />
/**
 * How much an optimiser step asks of the GPU next to the training step it follows, counted
 * rather than timed: the WebGPU dispatches (and submits) of one forward and backward pass of a
 * model, and of one step of each optimiser composed from ops (SGD's fused kernel for contrast),
 * as a markdown table.
 * On a GPU, where a small model's step is bound by dispatches rather than arithmetic, this is
 * the number that says whether fusing an optimiser could matter; on the CPU its arithmetic is
 * a few passes over the weights against the convolutions' thousands of multiply-adds per
 * weight. Any adapter will do for counting (lavapipe included).
 *
 *   deno run -A bench/optimiser_dispatches.ts [model] [batch]     (default resnet20 64)
 *
 * It times nothing: counts do not depend on the machine or its load.
 */
import * as rg from "../src/mod.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";

const [modelName = "resnet20", batchText = "64"] = process.argv.slice(2);
const gpu = await createWebGPUBackend({ allowFallback: true });
if (!gpu) throw new Error("no WebGPU adapter");
rg.registerBackend(gpu);
rg.setBackend("webgpu");
const batch = Number(batchText);

function counted(fn: () => void): { dispatches: number; submits: number } {
  const before = gpu!.stats();
  fn();
  const after = gpu!.stats();
  return { dispatches: after.dispatches - before.dispatches, submits: after.submits - before.submits };
}

interface Row {
  optimizer: string;
  /** Forward and backward: scale-amended SGD's forward hooks add to it. */
  training: { dispatches: number; submits: number };
  step: { dispatches: number; submits: number };
}

const rows: Row[] = [];
let parameterTensors = 0;
for (const name of rg.optim.OPTIMIZER_NAMES) {
  rg.manualSeed(0);
  const model = rg.models.createModel(modelName, { inChannels: 1, numClasses: 10, imageSize: 32 });
  parameterTensors = model.parameters().length;
  const opt = rg.optim.createOptimizer(model, { name }, { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const x = rg.randn([batch, 1, 32, 32]);
  const labels = Array.from({ length: batch }, (_, i) => i % 10);
  for (let step = 0; step < 2; step++) { // the second step is the steady state (buffers exist)
    let loss: rg.Tensor | null = null;
    const training = counted(() => {
      opt.zeroGrad();
      loss = rg.crossEntropy(model.forward(x), labels);
      loss.backward();
    });
    const update = counted(() => opt.step());
    await loss!.data();
    loss!.dispose();
    if (step === 1) rows.push({ optimizer: name, training, step: update });
  }
  model.dispose();
  x.dispose();
}
console.log(`adapter: ${gpu.adapterDescription}; ${modelName}, batch ${batch}, ${parameterTensors} parameter tensors; steady-state step (the second)`);
console.log("| optimiser | forward + backward dispatches | step dispatches | step submits | step / (forward + backward) |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  console.log(`| ${r.optimizer} | ${r.training.dispatches} | ${r.step.dispatches} | ${r.step.submits} | ${(r.step.dispatches / r.training.dispatches).toFixed(2)} |`);
}
