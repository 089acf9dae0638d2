/**
 * The generic op tier against PyTorch 1.13 (test/fixtures/generic_ops.safetensors, written by
 * gen_fixtures.py's gen_generic_ops): every unary op, pow at each fast path and beyond,
 * clamp with either bound, maximum/minimum, the comparisons, where, and the axis reductions
 * (sum, mean, amax/amin, max/min with indices, var/std, vector norms), forward values and the
 * gradients of Σ y·dy, with NaN and ±Inf among the inputs and, where a rule masks the
 * gradient, in dy. Non-finite values must match exactly; finite ones to relative 1e-4 +
 * absolute 1e-5 (sums of a few hundred terms). Then the pieces the fixtures do not reach:
 * scalar operands, the Tensor methods, the straight-through estimator, argument errors, and
 * the Bernoulli fill.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose, leaf, loadFixture } from "./helpers.ts";

const fx = loadFixture("generic_ops.safetensors");

interface CaseMeta {
  op: string;
  exponent?: number;
  min?: number | null;
  max?: number | null;
  axes?: number[];
  axis?: number;
  keepdim?: boolean;
  correction?: number;
  p?: number | "inf";
}

/** The retrograd call for a fixture case, from its inputs (in fixture order) and metadata. */
function call(m: CaseMeta, name: string, [x, b]: rg.Tensor[]): rg.Tensor {
  const unary: Record<string, (t: rg.Tensor) => rg.Tensor> = {
    exp: rg.exp, log: rg.log, sqrt: rg.sqrt, rsqrt: rg.rsqrt, abs: rg.abs, sign: rg.sign, neg: rg.neg,
    square: rg.square, tanh: rg.tanh, floor: (t) => rg.floor(t), round: (t) => rg.round(t),
  };
  const binary: Record<string, (p: rg.Tensor, q: rg.Tensor) => rg.Tensor> = {
    maximum: rg.maximum, minimum: rg.minimum, eq: rg.eq, ne: rg.ne, lt: rg.lt, le: rg.le, gt: rg.gt, ge: rg.ge,
  };
  if (unary[m.op]) return unary[m.op](x);
  if (binary[m.op]) return binary[m.op](x, b);
  switch (m.op) {
    case "pow": return rg.pow(x, m.exponent!);
    case "clamp": return rg.clamp(x, m.min, m.max);
    case "where": return rg.where(fx.get(`${name}.mask`), x, b);
    case "where_scalar": return rg.where(fx.get(`${name}.mask`), x, 0);
    case "sum": return rg.sum(x, m.axes, m.keepdim);
    case "mean": return rg.mean(x, m.axes, m.keepdim);
    case "amax": return rg.amax(x, m.axes, m.keepdim);
    case "amin": return rg.amin(x, m.axes, m.keepdim);
    case "max_dim":
    case "min_dim": {
      const { values, indices } = (m.op === "max_dim" ? rg.max : rg.min)(x, m.axis!, m.keepdim);
      assertClose(indices, fx.get(`${name}.indices`), `${name}.indices`, { rtol: 0, atol: 0 });
      assert.equal([...indices.shape], [...values.shape], `${name}: indices have the values' shape`);
      return values;
    }
    case "var": return rg.variance(x, m.axes, { correction: m.correction, keepdim: m.keepdim });
    case "std": return rg.std(x, m.axes, { correction: m.correction, keepdim: m.keepdim });
    case "norm": return rg.norm(x, m.p === "inf" ? Infinity : m.p, m.axes, m.keepdim);
  }
  throw new Error(`no retrograd call for fixture op ${m.op}`);
}

const cases = fx.keys().filter((k) => k.endsWith(".y")).map((k) => k.slice(0, -2)).sort();
/** Input names of a case, in the fixture's order (x, or a and b). */
const inputsOf = (name: string) => ["x", "a", "b"].filter((k) => fx.has(`${name}.${k}`));

for (const name of cases) {
  const m = fx.meta(name) as unknown as CaseMeta;
  const differentiable = fx.has(`${name}.dy`);
  test(`${name} matches PyTorch (${differentiable ? "forward and backward" : "forward"})`, () => {
    const names = inputsOf(name);
    const xs = names.map((k) => leaf(fx.get(`${name}.${k}`)));
    const y = call(m, name, xs);
    assert.equal([...y.shape], [...fx.get(`${name}.y`).shape], `${name}: shape`);
    assertClose(y, fx.get(`${name}.y`), `${name}.y`);
    if (!differentiable) {
      assert.not.ok(y.requiresGrad, `${name}: a comparison has no gradient`);
      return;
    }
    y.backward(fx.get(`${name}.dy`));
    names.forEach((k, i) => assertClose(xs[i].grad!, fx.get(`${name}.d${k}`), `${name}.d${k}`));
  });
}

test("the fixture covers every generic op", () => {
  const ops = new Set(cases.map((c) => (fx.meta(c) as unknown as CaseMeta).op));
  for (const op of [
    "exp", "log", "sqrt", "rsqrt", "abs", "sign", "neg", "square", "pow", "clamp", "floor", "round", "tanh",
    "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "where", "sum", "mean", "amax", "amin", "max_dim",
    "min_dim", "var", "std", "norm",
  ]) assert.ok(ops.has(op), `no case for ${op}`);
});

test("scalar operands: a number wherever a tensor operand goes, on either side", () => {
  const x = rg.tensor([1, -2, 3, 0.5], [2, 2]).requireGrad();
  assert.equal([...rg.mul(x, 2).dataSync()], [2, -4, 6, 1]);
  assert.equal([...rg.sub(1, x).dataSync()], [0, 3, -2, 0.5]);
  assert.equal([...rg.div(x, 4).dataSync()], [0.25, -0.5, 0.75, 0.125]);
  assert.equal([...rg.add(x, -1).dataSync()], [0, -3, 2, -0.5]);
  assert.equal([...rg.maximum(x, 0).dataSync()], [1, 0, 3, 0.5]);
  assert.equal([...rg.minimum(0, x).dataSync()], [0, -2, 0, 0]);
  assert.equal([...rg.where(rg.gt(x, 0), x, 0).dataSync()], [1, 0, 3, 0.5]);
  assert.equal([...rg.where(rg.gt(x, 0), 7, x).dataSync()], [7, -2, 7, 7]);
  const y = rg.sum(rg.add(rg.mul(rg.sub(1, x), 3), rg.div(x, 2)));
  y.backward();
  assert.equal([...x.grad!.dataSync()], [-2.5, -2.5, -2.5, -2.5], "d/dx of Σ 3(1 − x) + x/2");
  // outside tidy, which would free anything left over: the op itself frees the 0-d tensors it made
  const before = rg.memory().bytesInUse;
  const shifted = rg.add(x, 1);
  const doubled = rg.mul(shifted, 2);
  shifted.dispose();
  doubled.dispose();
  assert.is(rg.memory().bytesInUse, before, "the 0-d tensors made for numbers are freed");
  assert.throws(() => rg.add(1, 2), (e: Error) => e instanceof rg.ValueError && /needs a tensor/.test(e.message));
});

test("Tensor methods are the ops: x.add(y), x.mul(2), x.sum(axes, keepdim), x.max(axis), ...", () => {
  const x = rg.tensor([1, -2, 3, 4, -5, 6], [2, 3]);
  const same = (a: rg.Tensor, b: rg.Tensor, what: string) => {
    assert.equal([...a.shape], [...b.shape], `${what}: shape`);
    assert.equal([...a.dataSync()], [...b.dataSync()], what);
  };
  same(x.add(x), rg.add(x, x), "add");
  same(x.mul(2).sub(1).div(3), rg.div(rg.sub(rg.mul(x, 2), 1), 3), "mul/sub/div");
  same(x.exp().log(), rg.log(rg.exp(x)), "exp/log");
  same(x.abs().sqrt().rsqrt().square(), rg.square(rg.rsqrt(rg.sqrt(rg.abs(x)))), "abs/sqrt/rsqrt/square");
  same(x.neg().sign().tanh(), rg.tanh(rg.sign(rg.neg(x))), "neg/sign/tanh");
  same(x.pow(3).clamp(-10, 10).floor().round(), rg.round(rg.floor(rg.clamp(rg.pow(x, 3), -10, 10))), "pow/clamp/floor/round");
  same(x.maximum(0).minimum(2), rg.minimum(rg.maximum(x, 0), 2), "maximum/minimum");
  same(x.gt(0).add(x.le(-2)).add(x.eq(3)).add(x.ne(4)).add(x.lt(1)).add(x.ge(6)),
    rg.add(rg.add(rg.add(rg.add(rg.add(rg.gt(x, 0), rg.le(x, -2)), rg.eq(x, 3)), rg.ne(x, 4)), rg.lt(x, 1)), rg.ge(x, 6)),
    "comparisons");
  same(x.where(x.gt(0), -1), rg.where(rg.gt(x, 0), x, -1), "where");
  same(x.relu().sigmoid(), rg.sigmoid(rg.relu(x)), "relu/sigmoid");
  same(x.sum([0], true), rg.sum(x, [0], true), "sum");
  same(x.mean(1), rg.mean(x, 1), "mean");
  same(x.amax(0), rg.amax(x, 0), "amax");
  same(x.amin(), rg.amin(x), "amin");
  same(x.max(), rg.amax(x), "max()");
  same(x.max(1).indices, rg.argmax(x, 1), "max(axis).indices / argmax");
  same(x.min(0, true).values, rg.min(x, 0, true).values, "min(axis)");
  same(x.argmin(1), rg.argmin(x, 1), "argmin");
  same(x.var(1, { correction: 0 }), rg.var(x, 1, { correction: 0 }), "var");
  same(x.std(), rg.std(x), "std");
  same(x.norm(1, 1), rg.norm(x, 1, 1), "norm");
  same(x.reshape([3, 2]).flatten().matmul(rg.ones([2, 1])), rg.matmul(rg.flatten(rg.reshape(x, [3, 2])), rg.ones([2, 1])), "reshape/flatten/matmul");
});

test("the README's generic-tier example runs and means what it says", () => {
  rg.manualSeed(9);
  const x = rg.randn([2, 3, 4, 4]), g = rg.randn([5, 6]), logits = rg.randn([4, 10]), w = rg.randn([8, 3, 3, 3]);
  const z = x.sub(x.mean([2, 3], true)).div(x.std([2, 3], { keepdim: true }).add(1e-5)); // per-plane standardisation
  const g2 = rg.where(rg.gt(g.abs(), 1), g.sign(), g);
  const { values, indices } = logits.max(1);
  const filterNorms = w.norm(2, [1, 2, 3]);
  const q = rg.round(x.mul(127), { straightThrough: true }).div(127);
  const keep = rg.bernoulli([1024], 0.9);
  assertClose(z.mean([2, 3]), new Float32Array(6), "standardised planes have mean 0", { atol: 1e-6 });
  assertClose(z.std([2, 3]), new Float32Array(6).fill(1), "and std 1", { rtol: 1e-4 });
  const gv = g.dataSync();
  assert.equal([...g2.dataSync()], [...gv].map((v) => (Math.abs(v) > 1 ? Math.sign(v) : v)));
  const lv = logits.dataSync();
  for (let r = 0; r < 4; r++) {
    const row = [...lv.slice(10 * r, 10 * r + 10)];
    assert.is(values.dataSync()[r], Math.max(...row));
    assert.is(indices.dataSync()[r], row.indexOf(Math.max(...row)));
  }
  const wv = w.dataSync();
  for (let f = 0; f < 8; f++) {
    const norm = Math.hypot(...wv.slice(27 * f, 27 * f + 27));
    assert.ok(Math.abs(filterNorms.dataSync()[f] - norm) < 1e-5 * norm, `filter ${f} norm`);
  }
  assert.ok(q.dataSync().every((v, i) => Math.abs(v - x.dataSync()[i]) <= 0.5 / 127 + 1e-6), "q is x on a grid of 1/127");
  assert.ok(keep.dataSync().every((v) => v === 0 || v === 1));
});

test("floor and round: zero gradient, or the identity's with straightThrough", () => {
  for (const f of [rg.floor, rg.round]) {
    const x = rg.tensor([0.3, 1.7, -2.5, 4.5]).requireGrad();
    rg.sum(rg.mul(f(x), rg.tensor([1, 2, 3, 4]))).backward();
    assert.equal([...x.grad!.dataSync()], [0, 0, 0, 0], "PyTorch's zero gradient");
    x.grad = null;
    const y = f(x, { straightThrough: true });
    assert.equal([...y.dataSync()], [...f(x).dataSync()], "the same forward");
    rg.sum(rg.mul(y, rg.tensor([1, 2, 3, 4]))).backward();
    assert.equal([...x.grad!.dataSync()], [1, 2, 3, 4], "straight through: dy unchanged");
  }
});

test("sum and mean over every axis keep the bits of the whole-tensor reduction, with or without keepdim", () => {
  rg.manualSeed(3);
  const x = rg.randn([3, 5, 7]);
  const all = rg.sum(x).item();
  assert.is(rg.sum(x, [0, 1, 2]).item(), all);
  assert.is(rg.sum(x, [2, -3, 1]).item(), all);
  assert.equal([...rg.sum(x, null, true).shape], [1, 1, 1]);
  assert.is(rg.sum(x, null, true).item(), all);
  assert.is(rg.mean(x, [0, 1, 2]).item(), rg.mean(x).item());
});

test("reductions of rank 5 and of several separate runs of axes", () => {
  rg.manualSeed(4);
  const values = rg.randn([2, 3, 2, 3, 4]).dataSync();
  const x = rg.tensor(values, [2, 3, 2, 3, 4]).requireGrad();
  const y = rg.sum(x, [0, 2, 4], true);
  assert.equal([...y.shape], [1, 3, 1, 3, 1]);
  const expected = new Float64Array(9);
  values.forEach((v, i) => {
    const c1 = Math.floor(i / 24) % 3, c3 = Math.floor(i / 4) % 3;
    expected[c1 * 3 + c3] += v;
  });
  assertClose(y, expected, "Σ over axes 0, 2, 4");
  y.backward(rg.tensor(Array.from({ length: 9 }, (_, k) => k), [1, 3, 1, 3, 1]));
  const grad = x.grad!.dataSync();
  values.forEach((_, i) => assert.is(grad[i], (Math.floor(i / 24) % 3) * 3 + (Math.floor(i / 4) % 3), `grad ${i}`));
  const v = rg.variance(x, [1, 3]);
  assert.equal([...v.shape], [2, 2, 4], "var over two separate axes of a rank-5 tensor");
});

test("reductions and scalar ops refuse bad arguments with typed errors naming the op", () => {
  const x = rg.ones([2, 3]);
  assert.throws(() => rg.sum(x, 2), (e: Error) => e instanceof rg.ShapeError && /sum: axis 2 is out of range for shape \[2, 3\]/.test(e.message));
  assert.throws(() => rg.mean(x, [0, -2]), (e: Error) => e instanceof rg.ValueError && /mean: axis repeated/.test(e.message));
  assert.throws(() => rg.sum(x, []), (e: Error) => e instanceof rg.ValueError && /axes is empty/.test(e.message));
  assert.throws(() => rg.amax(rg.ones([2, 0]), 1), (e: Error) => e instanceof rg.ShapeError && /amax: cannot reduce over an empty axis/.test(e.message));
  assert.throws(() => rg.norm(x, 3), (e: Error) => e instanceof rg.ValueError && /norm: p must be 1, 2 or Infinity/.test(e.message));
  assert.throws(() => rg.clamp(x), (e: Error) => e instanceof rg.ValueError && /clamp: give min, max or both/.test(e.message));
  assert.throws(() => rg.pow(x, NaN), (e: Error) => e instanceof rg.ValueError && /pow: the exponent must be a number/.test(e.message));
  assert.throws(() => rg.where(rg.ones([2]), x, 0), (e: Error) => e instanceof rg.ShapeError && /where: shapes \[2\] and \[2, 3\]/.test(e.message));
  assert.throws(() => rg.bernoulli([2], 1.5), (e: Error) => e instanceof rg.ValueError && /p must be in \[0, 1\]/.test(e.message));
});

test("bernoulli: 0/1 draws from the seeded stream at rate p; the same seed gives the same draws", () => {
  rg.manualSeed(11);
  const a = rg.bernoulli([4000], 0.3).dataSync();
  rg.manualSeed(11);
  const b = rg.zeros([4000]).bernoulli_(0.3).dataSync();
  assert.equal([...a], [...b], "same seed, same draws");
  assert.ok(a.every((v) => v === 0 || v === 1), "only 0 and 1");
  const rate = a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(rate - 0.3) < 0.03, `rate ${rate} ≈ 0.3`);
  assert.ok(rg.bernoulli([100], 0).dataSync().every((v) => v === 0), "p = 0: all 0");
  assert.ok(rg.bernoulli([100], 1).dataSync().every((v) => v === 1), "p = 1: all 1");
});

test.run();
