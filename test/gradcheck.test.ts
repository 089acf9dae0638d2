/**
 * Finite-difference gradient checks of every op: the analytic gradient of Σ f(x)·w (random
 * w) against central differences of the same float32 forward, summed in float64. Step and
 * tolerances are set by float32 round-off: h = 1e-2, relative 5e-3 + absolute 1e-3.
 */
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { gradcheck } from "./helpers.ts";

rg.manualSeed(7);
const r = (...shape: number[]) => rg.randn(shape);
/** Values kept at least 0.05 away from 0 (no input sits on ReLU's kink). */
const awayFromZero = (...shape: number[]) => {
  const v = rg.randn(shape).dataSync().map((x) => (Math.abs(x) < 0.05 ? x + Math.sign(x || 1) * 0.1 : x));
  return rg.tensor(v, shape);
};

test("matmul", () => gradcheck("matmul", ([a, b]) => rg.matmul(a, b), [r(3, 4), r(4, 5)]));
test("linear", () => gradcheck("linear", ([x, w, b]) => rg.linear(x, w, b), [r(4, 5), r(3, 5), r(3)]));
test("conv2d stride 2, padding 1, dilation 2, groups 2, bias", () =>
  gradcheck("conv2d", ([x, w, b]) => rg.conv2d(x, w, b, { stride: 2, padding: 1, dilation: 2, groups: 2 }),
    [r(2, 4, 7, 6), r(6, 2, 3, 3), r(6)]));
test("conv2d depthwise", () =>
  gradcheck("depthwise", ([x, w]) => rg.conv2d(x, w, null, { padding: 1, groups: 3 }), [r(1, 3, 5, 5), r(3, 1, 3, 3)]));
test("batchNorm (training)", () =>
  gradcheck("batchNorm", ([x, g, b]) => rg.batchNorm(x, g, b, null, null, { training: true }),
    [r(3, 2, 3, 3), r(2), r(2)], { h: 1e-2, rtol: 5e-3, atol: 1e-3 }));
test("batchNorm (eval)", () =>
  gradcheck("batchNorm eval", ([x, g, b]) => rg.batchNorm(x, g, b, rg.tensor([0.1, -0.2]), rg.tensor([0.8, 1.3]), { training: false }),
    [r(2, 2, 3, 3), r(2), r(2)]));
test("batchNormRelu (training, with a residual)", () => {
  const shape = [3, 2, 3, 3];
  const [x, g, b] = [r(...shape), r(2), r(2)];
  // residual = t − batchNorm(x) with |t| ≥ 0.3: no pre-activation within a step of ReLU's kink.
  const t = rg.randn(shape).dataSync().map((v) => Math.sign(v || 1) * (0.3 + Math.abs(v)));
  const residual = rg.noGrad(() => rg.sub(rg.tensor(t, shape), rg.batchNorm(x, g, b, null, null, { training: true })));
  gradcheck("batchNormRelu", ([x, g, b, res]) => rg.batchNormRelu(x, g, b, null, null, { training: true }, res),
    [x, g, b, residual], { h: 1e-2, rtol: 5e-3, atol: 1e-3 });
});
test("relu", () => gradcheck("relu", ([x]) => rg.relu(x), [awayFromZero(3, 4)], { h: 1e-2 }));
test("sigmoid", () => gradcheck("sigmoid", ([x]) => rg.sigmoid(x), [r(3, 4)]));
test("add / sub / mul / div with channel broadcasting", () => {
  gradcheck("add", ([a, b]) => rg.add(a, b), [r(2, 3, 2, 2), r(1, 3, 1, 1)]);
  gradcheck("sub", ([a, b]) => rg.sub(a, b), [r(2, 3, 2, 2), r(3, 1, 1)]);
  gradcheck("mul", ([a, b]) => rg.mul(a, b), [r(2, 3, 2, 2), r(1, 3, 1, 1)]);
  gradcheck("div", ([a, b]) => rg.div(a, b), [r(2, 3, 4), rg.tensor([1.5, -2, 0.9, 1.2])]);
});
test("maxPool2d / avgPool2d / globalAvgPool2d", () => {
  gradcheck("maxPool2d", ([x]) => rg.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), [r(1, 2, 6, 6)], { h: 1e-3 });
  gradcheck("avgPool2d", ([x]) => rg.avgPool2d(x, { kernel: 3, stride: 1, padding: 1 }), [r(1, 2, 4, 5)]);
  gradcheck("globalAvgPool2d", ([x]) => rg.globalAvgPool2d(x), [r(2, 3, 3, 4)]);
});
test("reshape, flatten, sum, mean, scale", () => {
  gradcheck("flatten", ([x]) => rg.scale(rg.flatten(x), 3), [r(2, 3, 2)]);
  gradcheck("sum", ([x]) => rg.sum(x), [r(3, 5)]);
  gradcheck("mean", ([x]) => rg.mean(x), [r(3, 5)]);
});
test("crossEntropy (mean, label smoothing): the α = 1 gradient is the true gradient", () =>
  gradcheck("crossEntropy", ([z]) => rg.crossEntropy(z, [1, 0, 4], { labelSmoothing: 0.1 }), [r(3, 5)]));
test("dropout: the gradient is the saved mask", () => {
  // Same seed before each forward, so every evaluation draws the same mask.
  gradcheck("dropout", ([x]) => {
    rg.manualSeed(3);
    return rg.dropout(x, 0.3, true);
  }, [r(4, 5)]);
});

test.run();
