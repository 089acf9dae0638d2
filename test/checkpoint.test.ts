/**
 * Recomputation (rg.checkpoint, rg.checkpointSequential) on the CPU: training with it gives
 * the same bits as training without it (every step's loss and gradients, then the weights,
 * BatchNorm's running statistics and the random stream) for ResNet-20 and for a convnet with
 * dropout; the forward pass keeps less; hooks run where the header of memory/checkpoint.ts
 * says; a replay that differs from the first run is refused; checkpoints nest.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { bits, dropoutNet, recordSteps, type StepsSpec } from "./support/replay.ts";

const plain = (model: rg.nn.Module, x: rg.Tensor) => model.forward(x);
const resnet = { build: () => rg.models.resnet20({ inChannels: 1, numClasses: 4 }), inputShape: [4, 1, 12, 12], labels: [0, 1, 2, 3], steps: 3, seed: 31 };
const dropout = { build: dropoutNet, inputShape: [6, 1, 8, 8], labels: [0, 1, 2, 3, 4, 0], steps: 3, seed: 32 };

async function assertSameRun(spec: Omit<StepsSpec, "forward">, forward: StepsSpec["forward"], label: string) {
  const expected = await recordSteps({ ...spec, forward: plain });
  const actual = await recordSteps({ ...spec, forward });
  expected.losses.forEach((l, s) => assert.equal(actual.losses[s], l, `${label}: loss of step ${s}`));
  expected.grads.forEach((gs, s) => gs.forEach((g, i) => assert.equal(actual.grads[s][i], g, `${label}: step ${s}, gradient of parameter ${i}`)));
  for (const [name, v] of expected.state) assert.equal(actual.state.get(name), v, `${label}: ${name} after ${spec.steps} steps`);
  assert.equal(actual.nextDraws, expected.nextDraws, `${label}: the random stream is where it would be`);
}

test("ResNet-20: checkpointing every block, or √n segments, trains to the same bits (loss, gradients, weights, running statistics)", async () => {
  const perBlock = (model: rg.nn.Module, x: rg.Tensor) => rg.checkpointSequential(rg.recompute.blocksOf(model), rg.recompute.blocksOf(model).length, x);
  await assertSameRun(resnet, perBlock, "every block");
  const sqrtN = (model: rg.nn.Module, x: rg.Tensor) => rg.checkpointSequential(rg.recompute.blocksOf(model), 3, x);
  await assertSameRun(resnet, sqrtN, "3 segments");
});

test("a convnet with dropout: the recomputation replays the same masks; the same bits", async () => {
  const each = (model: rg.nn.Module, x: rg.Tensor) => rg.checkpointSequential(rg.recompute.blocksOf(model), 4, x);
  await assertSameRun(dropout, each, "every block");
  const wholeModel = (model: rg.nn.Module, x: rg.Tensor) => rg.checkpoint((h) => model.forward(h), x);
  await assertSameRun(dropout, wholeModel, "one checkpoint over the model");
});

test("nested checkpoints (Chen et al.'s recursion) train to the same bits", async () => {
  const nested = (model: rg.nn.Module, x: rg.Tensor) => {
    const [stem, ...rest] = rg.recompute.blocksOf(model);
    const head = rest.pop()!;
    const body = (h: rg.Tensor) => rg.checkpointSequential(rest, 3, h);
    return head.forward(rg.checkpoint((h) => body(stem.forward(h)), x));
  };
  await assertSameRun(resnet, nested, "nested");
});

test("the forward pass keeps only the checkpoints: retained bytes drop, and come back to the same after backward", () => {
  rg.manualSeed(33);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 4 });
  const x = rg.randn([8, 1, 16, 16]);
  const blocks = rg.recompute.blocksOf(model);
  rg.tidy(() => rg.sum(model.forward(x)).backward()); // grows the kernels' scratch to its size for these shapes
  model.zeroGrad();
  const retained = (forward: () => rg.Tensor) => rg.nn.frozenStats(model, () => {
    const before = rg.memory().bytesInUse;
    const out = forward();
    const kept = rg.memory().bytesInUse - before;
    rg.tidy(() => rg.sum(out).backward());
    out.dispose();
    model.zeroGrad();
    assert.is(rg.memory().bytesInUse, before, "everything is freed after backward");
    return kept;
  });
  const stored = retained(() => model.forward(x));
  const checkpointed = retained(() => rg.checkpointSequential(blocks, blocks.length, x));
  // Nested: the inner checkpoints' inputs are saved through the outer one, so nothing but the logits stays.
  const nested = retained(() => rg.checkpoint((h) => rg.checkpointSequential(blocks, blocks.length, h), x));
  assert.ok(nested <= 1024, `a checkpoint around the checkpointed chain keeps only the logits, got ${nested} B`);
  const outputs = rg.noGrad(() => {
    let bytes = 0;
    let h = x;
    for (const b of blocks) {
      const next = b.forward(h);
      bytes += next.size * 4;
      if (h !== x) h.dispose();
      h = next;
    }
    h.dispose();
    return bytes;
  });
  assert.ok(checkpointed < stored / 3, `checkpointed forward keeps ${checkpointed} B, the stored one ${stored} B`);
  // At most the block outputs (the last but one is freed as soon as the head, whose pooling
  // saves nothing of its input, has run).
  assert.ok(checkpointed <= outputs && checkpointed > outputs * 0.9, `checkpointed forward keeps about the block outputs (${outputs} B), got ${checkpointed} B`);
});

test("hooks: tensor and module backward hooks run once; forward hooks run in both passes, isRecomputing() tells them apart", () => {
  rg.manualSeed(34);
  const net = dropoutNet();
  const [first, second] = net.layers;
  const forwardCalls: boolean[] = [];
  first.registerForwardHook(() => void forwardCalls.push(rg.isRecomputing()));
  let backwardCalls = 0;
  second.registerBackwardHook((_m, gradInput) => {
    backwardCalls++;
    return gradInput ? rg.scale(gradInput, 2) : undefined; // a replacement flows on
  });
  let tensorHookCalls = 0;
  const x = rg.randn([2, 1, 8, 8]);
  const run = (checkpointed: boolean) => {
    forwardCalls.length = 0;
    backwardCalls = tensorHookCalls = 0;
    rg.manualSeed(35);
    const forward = (h: rg.Tensor) => {
      const a = first.forward(h);
      if (!rg.isRecomputing()) a.registerHook(() => void tensorHookCalls++);
      return net.layers.slice(1).reduce((t, m) => m.forward(t), a);
    };
    const y = checkpointed ? rg.checkpoint(forward, x) : forward(x);
    rg.sum(y).backward();
    const grads = net.parameters().map((p) => [...new Uint32Array(p.grad!.dataSync().buffer)]);
    net.zeroGrad();
    return grads;
  };
  const expected = run(false);
  assert.equal([forwardCalls, backwardCalls, tensorHookCalls], [[false], 1, 1]);
  assert.equal(run(true), expected, "the backward hook's replacement gradient is the same");
  assert.equal([forwardCalls, backwardCalls, tensorHookCalls], [[false, true], 1, 1]);
});

test("rg.grad through checkpoints equals backward()'s .grad bitwise; no-grad mode is a plain call", async () => {
  rg.manualSeed(36);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 4 });
  const x = rg.randn([2, 1, 8, 8]);
  const blocks = rg.recompute.blocksOf(model);
  const params = model.parameters();
  const grads = rg.nn.frozenStats(model, () => rg.grad(rg.crossEntropy(rg.checkpointSequential(blocks, 4, x), [1, 2]), params));
  rg.nn.frozenStats(model, () => rg.crossEntropy(model.forward(x), [1, 2]).backward());
  for (const [i, p] of params.entries()) assert.equal(await bits(grads[i]!), await bits(p.grad!), `parameter ${i}`);
  const y = rg.noGrad(() => rg.checkpoint((h) => rg.relu(h), x));
  assert.ok(!y.requiresGrad && y.gradFn === null);
});

test("a replay that differs from the first run is refused: other work, other shapes, swapped parameters", () => {
  const w = rg.randn([3, 3]).requireGrad();
  const x = rg.randn([2, 3]);
  let calls = 0;
  const drifting = (h: rg.Tensor) => (calls++ === 0 ? rg.relu(rg.linear(h, w)) : rg.linear(h, w));
  assert.throws(() => rg.sum(rg.checkpoint(drifting, x)).backward(), (e: Error) => e instanceof rg.RecomputationError && /saved 2 tensors .* first run saved 3/.test(e.message));
  const shapes = [[2, 3], [3, 2]];
  const reshaping = (h: rg.Tensor) => rg.relu(rg.reshape(h, shapes.shift()!));
  const leaf = rg.randn([2, 3]).requireGrad();
  assert.throws(() => rg.sum(rg.checkpoint(reshaping, leaf)).backward(), (e: Error) => e instanceof rg.RecomputationError && /was \[2, 3\] in the first run and \[3, 2\]/.test(e.message));
  const layer = new rg.nn.Linear(3, 3);
  const other = new Map([["weight", rg.randn([3, 3]).requireGrad()]]);
  // The checkpoint runs inside functionalCall, its backward pass (and so the replay) outside it.
  const swappedDuringFirstRun = layer.withTensors(other, () => rg.checkpoint((h) => layer.forward(h), x));
  assert.throws(() => rg.sum(swappedDuringFirstRun).backward(), (e: Error) => e instanceof rg.RecomputationError && /parameter/.test(e.message));
  const swappedInBoth = rg.checkpoint((h) => layer.withTensors(other, () => layer.forward(h)), x);
  rg.sum(swappedInBoth).backward();
  assert.ok(other.get("weight")!.grad !== null && layer.weight.grad === null, "swapping inside the checkpointed function is fine");
});

test("saved-tensor hooks: pack sees each saved tensor, the rule gets unpack's, release follows; frozenStatsEverywhere", () => {
  const events: string[] = [];
  const kept: rg.Tensor[] = [];
  const hooks = {
    pack: (t: rg.Tensor) => {
      events.push(`pack [${t.shape}]`);
      kept.push(rg.scale(t, 1)); // a copy the hooks own (an offload would move it elsewhere)
      return kept.length - 1;
    },
    unpack: (i: number) => (events.push(`unpack ${i}`), kept[i]),
    release: (i: number) => (events.push(`release ${i}`), kept[i].dispose()),
  };
  const x = rg.tensor([1, -2, 3]).requireGrad();
  const y = rg.withSavedTensorHooks(hooks, () => rg.relu(x));
  rg.sum(y).backward();
  assert.equal(events, ["pack [3]", "unpack 0", "release 0"]);
  assert.equal([...x.grad!.dataSync()], [1, 0, 1]);
  const bn = new rg.nn.BatchNorm2d(2);
  const before = [...bn.runningMean!.dataSync()];
  rg.nn.frozenStatsEverywhere(() => rg.noGrad(() => bn.forward(rg.randn([4, 2]))));
  assert.equal([...bn.runningMean!.dataSync()], before, "no running statistic moved");
  rg.noGrad(() => bn.forward(rg.randn([4, 2])));
  assert.not.equal([...bn.runningMean!.dataSync()], before, "outside the scope they move");
});

test.run();
