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


// ---- the generic op tier ----

/** |randn| + 0.5: inside the domain of log, sqrt, rsqrt and non-integer powers. */
const positive = (...shape: number[]) => rg.noGrad(() => rg.add(rg.abs(r(...shape)), 0.5));
/** Values at least 0.1 from every multiple of ½ (no step of floor, round, sign or abs within h). */
const offGrid = (...shape: number[]) => {
  const v = rg.randn(shape).dataSync().map((x) => {
    const q = Math.round(2 * x) / 2;
    return Math.abs(x - q) < 0.1 ? q + 0.15 : x;
  });
  return rg.tensor(v, shape);
};
/** Distinct values (no ties for max, min, amax, maximum): a shuffled ramp. */
const distinct = (...shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const perm = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.sin(a * 12.9898) - Math.sin(b * 12.9898));
  return rg.tensor(perm.map((k) => 0.3 * k - 0.1 * n + 0.05), shape);
};

test("unary ops: exp, log, sqrt, rsqrt, abs, sign, neg, square, tanh, pow, clamp, floor, round", () => {
  gradcheck("exp", ([x]) => rg.exp(x), [r(3, 5)]);
  gradcheck("log", ([x]) => rg.log(x), [positive(3, 5)]);
  gradcheck("sqrt", ([x]) => rg.sqrt(x), [positive(3, 5)]);
  gradcheck("rsqrt", ([x]) => rg.rsqrt(x), [positive(3, 5)]);
  gradcheck("abs", ([x]) => rg.abs(x), [offGrid(3, 5)]);
  gradcheck("sign", ([x]) => rg.sign(x), [offGrid(3, 5)]);
  gradcheck("neg", ([x]) => rg.neg(x), [r(3, 5)]);
  gradcheck("square", ([x]) => rg.square(x), [r(3, 5)]);
  gradcheck("tanh", ([x]) => rg.tanh(x), [r(3, 5)]);
  for (const p of [3, 2, 0.5, -0.5, -1, -2, 0, 1, 2.5, -1.5]) {
    gradcheck(`pow ${p}`, ([x]) => rg.pow(x, p), [Number.isInteger(p) && p > 0 ? r(3, 5) : positive(3, 5)]);
  }
  gradcheck("clamp", ([x]) => rg.clamp(x, -0.55, 0.45), [offGrid(3, 5)]);
  gradcheck("clamp min", ([x]) => rg.clamp(x, -0.55), [offGrid(3, 5)]);
  gradcheck("floor", ([x]) => rg.floor(x), [offGrid(3, 5)]);
  gradcheck("round", ([x]) => rg.round(x), [offGrid(3, 5)]);
});

test("maximum, minimum and where, with broadcasting and numbers", () => {
  gradcheck("maximum", ([a, b]) => rg.maximum(a, b), [distinct(2, 3, 4), rg.tensor([0.15, -0.45, 1.05, 0.75], [4])]);
  gradcheck("minimum", ([a, b]) => rg.minimum(a, b), [distinct(2, 3, 4), rg.tensor([0.15, -0.45, 0.75], [3, 1])]);
  gradcheck("maximum with 0", ([a]) => rg.maximum(a, 0.05), [distinct(3, 4)]);
  const mask = rg.tensor([1, 0, 0, 1, 1, 0, 1, 0], [2, 1, 4]);
  gradcheck("where", ([a, b]) => rg.where(mask, a, b), [r(2, 3, 4), r(4)]);
  gradcheck("where with a number", ([a]) => rg.where(mask, 2, a), [r(2, 3, 4)]);
});

test("axis reductions: sum, mean, amax, amin, max/min along an axis, var, std, norm", () => {
  gradcheck("sum axes 0, 2", ([x]) => rg.sum(x, [0, 2]), [r(2, 3, 4, 2)]);
  gradcheck("sum last, keepdim", ([x]) => rg.sum(x, -1, true), [r(2, 3, 4)]);
  gradcheck("mean axes 1, 3", ([x]) => rg.mean(x, [1, 3], true), [r(2, 3, 4, 2)]);
  gradcheck("amax", ([x]) => rg.amax(x, [0, 2]), [distinct(2, 3, 4)], { h: 1e-3 });
  gradcheck("amin", ([x]) => rg.amin(x, 1, true), [distinct(2, 3, 4)], { h: 1e-3 });
  gradcheck("max along 1", ([x]) => rg.max(x, 1).values, [distinct(2, 3, 4)], { h: 1e-3 });
  gradcheck("min along 2", ([x]) => rg.min(x, 2, true).values, [distinct(2, 3, 4)], { h: 1e-3 });
  gradcheck("var", ([x]) => rg.variance(x, [0, 2]), [r(3, 2, 4)]);
  gradcheck("var, correction 0", ([x]) => rg.variance(x, 1, { correction: 0, keepdim: true }), [r(3, 4)]);
  gradcheck("std", ([x]) => rg.std(x, [1]), [r(3, 5)]);
  gradcheck("norm 1", ([x]) => rg.norm(x, 1, 1), [offGrid(3, 5)]);
  gradcheck("norm 2", ([x]) => rg.norm(x, 2, [0, 2], true), [r(2, 3, 4)]);
  gradcheck("norm ∞", ([x]) => rg.norm(x, Infinity, 1), [distinct(3, 5)], { h: 1e-3 });
});

test.run();
