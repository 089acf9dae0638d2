/**
 * Every op against PyTorch 1.13 (test/fixtures/ops.safetensors): forward values and the
 * gradients of Σ y·dy for a random upstream dy. float32 tolerances: relative 1e-4 on
 * forwards, 1e-4 relative + 1e-5 absolute on gradients (sums over a few hundred terms).
 */
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { assertClose, leaf, loadFixture } from "./helpers.ts";

const fx = loadFixture("ops.safetensors");

/** Run `f` on fresh leaves of the named inputs and compare y and every d<input>. */
function checkCase(name: string, inputs: string[], f: (xs: rg.Tensor[]) => rg.Tensor, tol = {}) {
  test(`${name} matches PyTorch (forward and backward)`, () => {
    const xs = inputs.map((k) => leaf(fx.get(`${name}.${k}`)));
    const y = f(xs);
    assertClose(y, fx.get(`${name}.y`), `${name}.y`, tol);
    y.backward(fx.get(`${name}.dy`));
    inputs.forEach((k, i) => assertClose(xs[i].grad!, fx.get(`${name}.d${k}`), `${name}.d${k}`, tol));
  });
}

checkCase("matmul", ["a", "b"], ([a, b]) => rg.matmul(a, b));
checkCase("linear", ["x", "weight", "bias"], ([x, w, b]) => rg.linear(x, w, b));

for (const name of ["conv_basic", "conv_stride_dil", "conv_groups", "conv_depthwise", "conv_1x1_s2", "conv_1x1", "conv_rect", "conv_deep", "conv_strided_direct", "conv_ragged_direct", "conv_ragged_s2"]) {
  const m = fx.meta(name) as { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number; bias: boolean };
  const opts = { stride: m.stride, padding: m.padding, dilation: m.dilation, groups: m.groups };
  // conv_deep sums 1152 terms per output and 288 per filter gradient (typical size 17): an
  // absolute 1e-4 is still 6e-6 of that, where 1e-5 trips on cancellations near zero.
  const tol = name === "conv_deep" ? { atol: 1e-4 } : {};
  checkCase(name, m.bias ? ["x", "weight", "bias"] : ["x", "weight"], ([x, w, b]) => rg.conv2d(x, w, b ?? null, opts), tol);
}

test("bn_train matches PyTorch, running statistics included", () => {
  const m = fx.meta("bn_train") as { momentum: number; eps: number };
  const [x, w, b] = ["x", "weight", "bias"].map((k) => leaf(fx.get(`bn_train.${k}`)));
  const rm = rg.tensor(fx.get("bn_train.running_mean").dataSync());
  const rv = rg.tensor(fx.get("bn_train.running_var").dataSync());
  const y = rg.batchNorm(x, w, b, rm, rv, { training: true, momentum: m.momentum, eps: m.eps });
  assertClose(y, fx.get("bn_train.y"), "bn_train.y");
  assertClose(rm, fx.get("bn_train.running_mean_after"), "running_mean");
  assertClose(rv, fx.get("bn_train.running_var_after"), "running_var");
  y.backward(fx.get("bn_train.dy"));
  assertClose(x.grad!, fx.get("bn_train.dx"), "bn_train.dx");
  assertClose(w.grad!, fx.get("bn_train.dweight"), "bn_train.dweight");
  assertClose(b.grad!, fx.get("bn_train.dbias"), "bn_train.dbias");
});

checkCase("bn_eval", ["x", "weight", "bias"], ([x, w, b]) =>
  rg.batchNorm(x, w, b, fx.get("bn_eval.running_mean"), fx.get("bn_eval.running_var"), {
    training: false, eps: (fx.meta("bn_eval") as { eps: number }).eps,
  }));

checkCase("relu", ["x"], ([x]) => rg.relu(x));
checkCase("sigmoid", ["x"], ([x]) => rg.sigmoid(x));
checkCase("add_bcast", ["a", "b"], ([a, b]) => rg.add(a, b));
checkCase("mul_bcast", ["a", "b"], ([a, b]) => rg.mul(a, b));
checkCase("mul_same", ["a", "b"], ([a, b]) => rg.mul(a, b));
checkCase("sub_bcast", ["a", "b"], ([a, b]) => rg.sub(a, b));
checkCase("div_bcast", ["a", "b"], ([a, b]) => rg.div(a, b));

type PoolMeta = { kernel: number; stride: number; padding: number; count_include_pad?: boolean };
checkCase("maxpool", ["x"], ([x]) => {
  const m = fx.meta("maxpool") as PoolMeta;
  return rg.maxPool2d(x, { kernel: m.kernel, stride: m.stride, padding: m.padding });
});
for (const name of ["avgpool", "avgpool_pad"]) {
  checkCase(name, ["x"], ([x]) => {
    const m = fx.meta(name) as PoolMeta;
    return rg.avgPool2d(x, { kernel: m.kernel, stride: m.stride, padding: m.padding, countIncludePad: m.count_include_pad ?? true });
  });
}
checkCase("gap", ["x"], ([x]) => rg.globalAvgPool2d(x));

for (const name of ["ce_mean", "ce_sum", "ce_smooth", "ce_pg", "ce_pg_smooth", "ce_pg_sum"]) {
  test(`${name}: cross-entropy loss and (PowerGrad) gradient match PyTorch`, () => {
    const m = fx.meta(name) as { reduction: "mean" | "sum"; smoothing: number; alpha?: number };
    const logits = leaf(fx.get(`${name}.logits`));
    const loss = rg.crossEntropy(logits, fx.get(`${name}.labels`), {
      reduction: m.reduction, labelSmoothing: m.smoothing, powerGrad: m.alpha,
    });
    assertClose(loss, fx.get(`${name}.loss`), `${name}.loss`);
    loss.backward();
    assertClose(logits.grad!, fx.get(`${name}.dlogits`), `${name}.dlogits`);
  });
}

test.run();
