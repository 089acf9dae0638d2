/**
 * NaN and ±Infinity are answers, not noise: the ops that used to turn NaN into 0 (ReLU, the
 * fused BatchNorm → (+ residual) → ReLU, max pooling) must propagate them exactly as PyTorch
 * 1.13 does (test/fixtures/nonfinite.safetensors), forward and backward, fused and unfused,
 * so one bad pixel shows up as a NaN loss instead of silently poisoning the weights.
 * The WebGPU kernels are checked against the same fixture in webgpu.test.ts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose, leaf, loadFixture } from "./helpers.ts";

const fx = loadFixture("nonfinite.safetensors");

test("relu keeps NaN and ±Infinity as PyTorch does; its gradient passes where the output is NaN", () => {
  assert.equal([...rg.relu(rg.tensor([NaN, -1, 2])).dataSync()], [NaN, 0, 2]);
  const x = leaf(fx.get("relu.x"));
  const y = rg.relu(x);
  assertClose(y, fx.get("relu.y"), "relu.y");
  y.backward(fx.get("relu.dy"));
  assertClose(x.grad!, fx.get("relu.dx"), "relu.dx");
});

type BnMeta = { momentum: number; eps: number };

for (const fused of [true, false]) {
  test(`batchNorm → + residual → relu (${fused ? "fused kernels" : "separate ops"}) with NaN and ±Infinity matches PyTorch`, () => {
    const m = fx.meta("bn_relu") as BnMeta;
    const [x, w, b, residual] = ["x", "weight", "bias", "residual"].map((k) => leaf(fx.get(`bn_relu.${k}`)));
    const rm = rg.tensor(fx.get("bn_relu.running_mean").dataSync());
    const rv = rg.tensor(fx.get("bn_relu.running_var").dataSync());
    const opts = { training: true, momentum: m.momentum, eps: m.eps };
    const y = fused
      ? rg.batchNormRelu(x, w, b, rm, rv, opts, residual)
      : rg.relu(rg.add(residual, rg.batchNorm(x, w, b, rm, rv, opts)));
    assertClose(y, fx.get("bn_relu.y"), "y");
    assertClose(rm, fx.get("bn_relu.running_mean_after"), "running_mean");
    assertClose(rv, fx.get("bn_relu.running_var_after"), "running_var");
    y.backward(fx.get("bn_relu.dy"));
    for (const [name, t] of [["x", x], ["weight", w], ["bias", b], ["residual", residual]] as const) {
      assertClose(t.grad!, fx.get(`bn_relu.d${name}`), `d${name}`);
    }
  });
}

for (const name of ["maxpool_k3", "maxpool_k2"]) {
  test(`${name}: a NaN is its window's maximum (the last NaN takes the gradient), as in PyTorch`, () => {
    const m = fx.meta(name) as { kernel: number; stride: number; padding: number };
    const x = leaf(fx.get(`${name}.x`));
    const y = rg.maxPool2d(x, { kernel: m.kernel, stride: m.stride, padding: m.padding });
    assertClose(y, fx.get(`${name}.y`), `${name}.y`);
    y.backward(fx.get(`${name}.dy`));
    assertClose(x.grad!, fx.get(`${name}.dx`), `${name}.dx`);
  });
}

test("one NaN pixel makes the MLP's loss NaN instead of a plausible number", () => {
  rg.manualSeed(1);
  const model = rg.models.createModel("mlp", { inChannels: 1, numClasses: 10, imageSize: 28 });
  const pixels = rg.randn([4, 1, 28, 28]).dataSync();
  pixels[3 * 784 + 100] = NaN;
  const loss = rg.crossEntropy(model.forward(rg.tensor(pixels, [4, 1, 28, 28])), [1, 2, 3, 4]);
  assert.ok(Number.isNaN(loss.item()), `loss ${loss.item()}`);
});

test("loadStateDict warns about NaN and ±Infinity weights, naming each tensor, and refuses them under nonFinite: \"error\"", () => {
  const model = rg.models.createModel("mlp", { inChannels: 1, numClasses: 10, imageSize: 28 });
  const state = new Map([...model.stateDict()].map(([k, t]) => [k, rg.tensor(t.dataSync(), t.shape)]));
  const [first, second] = [...state.keys()];
  const bad = (key: string, values: number[]) => {
    const v = state.get(key)!.dataSync().slice();
    values.forEach((x, i) => (v[i] = x));
    state.set(key, rg.tensor(v, state.get(key)!.shape));
  };
  bad(first, [NaN, NaN, Infinity]);
  bad(second, [-Infinity]);
  const before = model.stateDict().get(first)!.dataSync().slice();
  assert.throws(() => model.loadStateDict(state, { nonFinite: "error" }), (e: unknown) =>
    e instanceof rg.StateDictError &&
    (e as Error).message.includes(`${first} (2 NaN, 1 +Infinity), ${second} (1 -Infinity)`));
  assert.equal([...model.stateDict().get(first)!.dataSync()], [...before], "nothing was loaded");

  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.join(" "));
  try {
    model.loadStateDict(state);
  } finally {
    console.warn = warn;
  }
  assert.is(warnings.length, 1);
  assert.match(warnings[0], `non-finite values in ${first} (2 NaN, 1 +Infinity), ${second} (1 -Infinity)`);
  assert.ok(Number.isNaN(model.stateDict().get(first)!.dataSync()[0]), "loaded as they are");
});

test.run();
