/// <reference types="@webgpu/types" />
/**
 * Recomputation on the WebGPU backend: training with checkpoints gives the same bits as
 * training without them there too (every step's loss and gradients, then the weights, the
 * running statistics and the random stream), for ResNet-20 (block checkpoints, and a graph
 * plan with cuts inside residual blocks) and for a convnet with dropout, whose masks the GPU
 * draws from the same seeded stream; and the planner's predicted peaks are the measured ones
 * there too. Skipped where no adapter exists.
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { gpuTest } from "./support/gpu.ts";
import { dropoutNet, recordSteps, type StepsSpec, stripedGraphPlan } from "./support/replay.ts";

async function onWebGPU<T>(fn: () => Promise<T>): Promise<T> {
  const previous = rg.getBackend().name;
  rg.setBackend("webgpu");
  try {
    return await fn();
  } finally {
    rg.setBackend(previous);
  }
}

async function assertSameRun(spec: Omit<StepsSpec, "forward">, forward: StepsSpec["forward"], label: string) {
  const [expected, actual] = await onWebGPU(async () => [
    await recordSteps({ ...spec, forward: (model, x) => model.forward(x) }),
    await recordSteps({ ...spec, forward }),
  ]);
  expected.losses.forEach((l, s) => assert.equal(actual.losses[s], l, `${label}: loss of step ${s}`));
  expected.grads.forEach((gs, s) => gs.forEach((g, i) => assert.equal(actual.grads[s][i], g, `${label}: step ${s}, gradient of parameter ${i}`)));
  for (const [name, v] of expected.state) assert.equal(actual.state.get(name), v, `${label}: ${name}`);
  assert.equal(actual.nextDraws, expected.nextDraws, `${label}: the random stream`);
}

gpuTest("webgpu: ResNet-20 trains to the same bits with every block checkpointed", async () => {
  const spec = { build: () => rg.models.resnet20({ inChannels: 1, numClasses: 4 }), inputShape: [3, 1, 8, 8], labels: [0, 1, 2], steps: 2, seed: 41 };
  await assertSameRun(spec, (model, x) => rg.checkpointSequential(rg.recompute.blocksOf(model), 11, x), "ResNet-20");
});

gpuTest("webgpu: ResNet-20 trains to the same bits through a graph plan with cuts inside residual blocks", async () => {
  const spec = { build: () => rg.models.resnet20({ inChannels: 1, numClasses: 4 }), inputShape: [3, 1, 8, 8], labels: [0, 1, 2], steps: 2, seed: 44 };
  const plan = stripedGraphPlan(rg.recompute.opsOf(spec.build()).length, 3);
  await assertSameRun(spec, (model, x) => new rg.recompute.GraphPlannedModel(model, plan).forward(x), "ResNet-20, graph plan");
});

gpuTest("webgpu: a convnet with dropout trains to the same bits with every block checkpointed", async () => {
  const spec = { build: dropoutNet, inputShape: [6, 1, 8, 8], labels: [0, 1, 2, 3, 4, 0], steps: 3, seed: 42 };
  await assertSameRun(spec, (model, x) => rg.checkpointSequential(rg.recompute.blocksOf(model), 4, x), "dropout");
});

gpuTest("webgpu: the planner's predicted peaks equal the measured ones", async () => {
  await onWebGPU(async () => {
    rg.manualSeed(43);
    const model = rg.models.resnet20({ inChannels: 1, numClasses: 4 });
    const x = rg.randn([4, 1, 8, 8]);
    const labels = [0, 1, 2, 3];
    const profile = rg.recompute.profileModel(model, x, labels);
    const backend = rg.getBackend();
    const allRecomputed = { segments: [{ start: 0, end: profile.blocks.length - 1, recompute: true }] };
    for (const plan of [rg.recompute.keepAll(profile), rg.recompute.sqrtPlan(profile), rg.recompute.smallestPeak(profile).plan, allRecomputed]) {
      const planned = new rg.recompute.PlannedModel(model, plan);
      const peak = rg.nn.frozenStats(model, () => {
        backend.resetPeak();
        rg.tidy(() => rg.crossEntropy(planned.forward(x), labels).backward());
        return backend.memory().peakBytes;
      });
      model.zeroGrad();
      assert.is(peak, rg.recompute.predict(profile, plan).peakBytes, JSON.stringify(plan.segments.filter((s) => s.recompute)));
    }
  });
});

test.run();
