/**
 * Modules that research code can drive: BatchNorm without running statistics and with frozen
 * ones (an extra forward leaves every buffer bitwise unchanged), forked random streams,
 * functionalCall (a module at other parameters, gradients to them), the ResNet's stem and head
 * as modules (state-dict names unchanged), replaceModule, and the optimiser interface (SGD's
 * tensor-op definition equals its fused kernel bitwise; parameter groups).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";

function bits(t: rg.Tensor): number[] {
  return [...new Uint32Array(t.dataSync().buffer)];
}

function snapshot(model: rg.nn.Module): Map<string, number[]> {
  return new Map([...model.stateDict()].map(([k, t]) => [k, bits(t)]));
}

test("frozenStats: a training-mode forward moves no BatchNorm buffer (running stats, num_batches_tracked) and normalises by the batch", () => {
  rg.manualSeed(6);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 10 });
  const x = rg.randn([4, 1, 12, 12]);
  rg.tidy(() => void model.forward(x)); // one ordinary step moves them
  const before = snapshot(model);
  const frozen = rg.tidy(() => rg.nn.frozenStats(model, () => rg.noGrad(() => model.forward(x))));
  assert.equal(snapshot(model), before, "every buffer bitwise unchanged");
  const moving = rg.noGrad(() => model.forward(x)); // the same batch, statistics moving: the same output
  assert.equal(bits(frozen), bits(moving), "frozen statistics do not change what the forward computes");
  assert.not.equal(snapshot(model).get("bn1.running_mean"), before.get("bn1.running_mean"), "outside the scope they move again");
  assert.is((model.bn1 as rg.nn.BatchNorm2d).statsFrozen, 0);
});

test("BatchNorm2d trackRunningStats: false has no buffers and uses batch statistics in eval mode too", () => {
  const bn = new rg.nn.BatchNorm2d(2, { trackRunningStats: false });
  assert.equal([...bn.stateDict().keys()], ["weight", "bias"]);
  const x = rg.tensor([1, 2, 3, 4, 5, 6, 7, 9], [2, 2, 2, 1]);
  const train = rg.noGrad(() => bn.forward(x));
  bn.eval();
  const evaluated = rg.noGrad(() => bn.forward(x));
  assert.equal(bits(evaluated), bits(train));
  assertClose(rg.mean(train), [0], "normalised", { atol: 1e-6 });
});

test("withRandomState runs on another stream and leaves the global one's next draws unchanged", () => {
  rg.manualSeed(9);
  const expected = rg.randn([5]).dataSync();
  rg.manualSeed(9);
  const inside = rg.withRandomState(1234, () => rg.randn([3]).dataSync());
  const next = rg.randn([5]).dataSync();
  assert.equal([...next], [...expected], "the training stream continues where it was");
  rg.manualSeed(1234);
  assert.equal([...inside], [...rg.randn([3]).dataSync()], "fn drew from seed 1234's stream");
  assert.throws(() => rg.withRandomState(1, () => Promise.resolve()), /synchronous/);
});

test("functionalCall runs a module at other parameters; gradients reach them; the module is unchanged", () => {
  rg.manualSeed(7);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 10 });
  const other = rg.models.resnet20({ inChannels: 1, numClasses: 10 });
  const x = rg.randn([3, 1, 10, 10]);
  const own = snapshot(model);
  model.eval();
  other.eval();
  const params = new Map([...other.stateDict()]);
  const viaCall = rg.noGrad(() => rg.nn.functionalCall(model, params, x));
  const direct = rg.noGrad(() => other.forward(x));
  assert.equal(bits(viaCall), bits(direct), "model at other's tensors computes other's output");
  assert.equal(snapshot(model), own, "the model's own tensors are back and unchanged");
  // valueAndGrad of a loss as a function of the parameters
  const named = new Map([...other.namedParameters()]);
  const loss = (ps: ReadonlyMap<string, rg.Tensor>) => rg.crossEntropy(rg.nn.functionalCall(model, ps, x), [1, 2, 3]);
  const { grads } = rg.valueAndGrad(loss)(named);
  rg.crossEntropy(other.forward(x), [1, 2, 3]).backward();
  for (const [name, p] of other.namedParameters()) assert.equal(bits(grads.get(name)!), bits(p.grad!), name);
  assert.ok(model.parameters().every((p) => p.grad === null), "the model's own parameters got no gradient");
  assert.throws(() => rg.nn.functionalCall(model, { "nope.weight": x }, x), (e: Error) => e instanceof rg.StateDictError && /nope\.weight/.test(e.message));
});

test("ResNet: stem and head are modules, hookable and in sequence(); state-dict names are torchvision's", () => {
  const model = rg.models.resnet18({ numClasses: 10 });
  const keys = [...model.stateDict().keys()];
  assert.equal(keys.slice(0, 6), ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"]);
  assert.equal(keys.slice(-2), ["fc.weight", "fc.bias"]);
  assert.ok(!keys.some((k) => k.startsWith("stem.") || k.startsWith("head.")));
  assert.equal(model.sequence().length, 6);
  assert.is(model.getModule("stem"), model.stem);
  assert.is(model.getModule("conv1"), model.stem.conv1);
  const seen: string[] = [];
  model.stem.registerForwardHook((_m, _i, out) => void seen.push(`stem ${out.shape}`));
  model.head.registerForwardHook((_m, _i, out) => void seen.push(`head ${out.shape}`));
  rg.noGrad(() => model.eval().forward(rg.randn([1, 3, 32, 32])));
  assert.equal(seen, ["stem 1,64,8,8", "head 1,10"]);
});

test("replaceModule swaps a block: the forward uses it and its tensors take the old names", () => {
  rg.manualSeed(8);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 4 });
  const replacement = new rg.models.BasicBlock(16, 16);
  const old = model.replaceModule("layer1.1", replacement);
  assert.is(model.stages[0].layers[1], replacement);
  assert.ok(old !== replacement);
  assert.is(model.stateDict().get("layer1.1.conv1.weight"), replacement.convs[0].weight);
  let ran = 0;
  replacement.registerForwardHook(() => void ran++);
  rg.noGrad(() => model.forward(rg.randn([2, 1, 8, 8])));
  assert.is(ran, 1);
  const fc = new rg.nn.Linear(64, 4);
  model.replaceModule("fc", fc);
  assert.is(model.fc, fc, "a layer inside the inline head");
});

test("SGD: the tensor-op definition and the fused kernel give the same bits (momentum, Nesterov, decay, dampening, groups)", () => {
  for (const config of [
    { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    { lr: 0.05, momentum: 0.8, dampening: 0.1, weightDecay: 1e-3 },
    { lr: 0.2 },
  ]) {
    const run = (fused: boolean) => {
      rg.manualSeed(11);
      const a = rg.randn([37]).requireGrad(), b = rg.randn([5, 3]).requireGrad();
      const opt = new rg.optim.SGD([{ params: [a] }, { params: [b], lrScale: 0.5, weightDecay: 0 }], config);
      opt.useFusedKernel = fused;
      for (let step = 0; step < 3; step++) {
        opt.zeroGrad();
        a.grad = rg.randn([37]);
        b.grad = rg.randn([5, 3]);
        opt.step();
      }
      return [bits(a), bits(b), ...[...opt.stateDict().values()].map(bits)];
    };
    assert.equal(run(false), run(true), JSON.stringify(config));
  }
});

test("parameter groups: each group's rate is lr × lrScale and its own options; errors name the group", () => {
  const a = rg.tensor([1]).requireGrad(), b = rg.tensor([1]).requireGrad();
  const opt = new rg.optim.SGD([{ params: [a] }, { params: [b], lrScale: 0.1 }], { lr: 1 });
  a.grad = rg.tensor([1]);
  b.grad = rg.tensor([1]);
  opt.step();
  assertClose(a, [0], "group 0 at lr 1");
  assertClose(b, [0.9], "group 1 at lr 0.1");
  assert.is(opt.paramGroups.length, 2);
  assert.throws(() => new rg.optim.SGD([{ params: [a] }, { params: [a] }], { lr: 1 }), /more than one group/);
  assert.throws(() => new rg.optim.SGD([{ params: [b], nesterov: true }], { lr: 1 }), /Nesterov/);
});

test.run();
