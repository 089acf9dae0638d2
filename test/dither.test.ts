/**
 * Dithered backprop (ops/dither.ts, nn/dither.ts): the quantiser is unbiased (the mean over
 * many draws converges to its input, where plain rounding stays off by its bias), lands on
 * multiples of Δ, and zeroes the fraction of a Gaussian gradient its law predicts; the op is
 * the identity forward and quantises only the gradient; on a model the dithered gradients
 * average to the exact ones, the forward is untouched, each layer reports its sparsity, and
 * the same seed redraws the same dither.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";
import { both, compare, ELEMENTWISE, gpuTest, randomValues } from "./support/gpu.ts";

/** The standard normal density and distribution function (Abramowitz–Stegun 7.1.26 for erf). */
const phi = (z: number) => Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
function bigPhi(z: number): number {
  const x = Math.abs(z) / Math.SQRT2, t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

test("dithered quantisation is unbiased: the mean of 4000 draws is the input within 5 standard errors; values are multiples of Δ", () => {
  rg.manualSeed(1);
  const step = 0.5;
  const g = rg.tensor(Array.from({ length: 40 }, (_, i) => (i - 20) * 0.037 + 0.011)); // off the grid, mostly |g| < Δ
  const draws = 4000;
  const sum = new Float64Array(g.size);
  for (let d = 0; d < draws; d++) {
    const q = rg.ditherQuantise(g, step).dataSync();
    q.forEach((v, i) => {
      sum[i] += v;
      if (Math.abs(v / step - Math.round(v / step)) > 1e-6) assert.unreachable(`draw ${d}, element ${i}: ${v} is not a multiple of Δ = ${step}`);
    });
  }
  // Each draw has variance ≤ Δ²/4, so the mean's standard error is ≤ Δ/(2√draws).
  const bound = 5 * step / (2 * Math.sqrt(draws));
  const gv = g.dataSync();
  gv.forEach((v, i) => {
    const mean = sum[i] / draws;
    if (Math.abs(mean - v) > bound) assert.unreachable(`element ${i}: mean ${mean} of the draws, input ${v} (bound ${bound})`);
  });
  // Plain rounding to the same grid is biased far beyond that bound: the test can tell.
  const worstRoundingBias = Math.max(...[...gv].map((v) => Math.abs(step * Math.round(v / step) - v)));
  assert.ok(worstRoundingBias > 10 * bound, `rounding's bias ${worstRoundingBias} is visible against ${bound}`);
});

test("the zero fraction of a dithered N(0, 1) gradient with Δ = std is E[max(0, 1 − |z|)] = 2Φ(1) − 1 − 2(φ(0) − φ(1)) ≈ 0.369; with Δ = 4·std ≈ 0.801", () => {
  rg.manualSeed(2);
  const g = rg.randn([200_000]);
  for (const [factor, k] of [[1, 1], [4, 4]]) {
    const expected = 2 * bigPhi(k) - 1 - (2 / k) * (phi(0) - phi(k));
    const step = rg.ditherStep(g, "std", factor);
    const q = rg.ditherQuantise(g, step).dataSync();
    const zeros = q.reduce((n, v) => n + (v === 0 ? 1 : 0), 0) / q.length;
    assert.ok(Math.abs(zeros - expected) < 0.005, `factor ${factor}: zero fraction ${zeros}, expected ${expected}`);
  }
});

test("Δ rules: std (population) and max|g|, times the factor; an all-zero gradient quantises to zeros", () => {
  const g = rg.tensor([1, -3, 2, 0], [2, 2]);
  const mean = 0, sd = Math.sqrt((1 + 9 + 4 + 0) / 4 - mean);
  assertClose(rg.ditherStep(g, "std", 2), [2 * sd], "std rule");
  assert.equal(rg.ditherStep(g, "std", 2).shape, [1, 1], "broadcastable");
  assertClose(rg.ditherStep(g, "maxabs", 0.5), [1.5], "maxabs rule");
  const zero = rg.zeros([5]);
  assert.equal([...rg.ditherQuantise(zero, rg.ditherStep(zero, "std", 1)).dataSync()], [0, 0, 0, 0, 0]);
});

test("ditherGrad: identity forward; its gradient is dithered, seeded, and averages to the true gradient", () => {
  const x = rg.tensor([0.3, -1.2, 2.5, 0.05, -0.4, 1.1]).requireGrad();
  const c = rg.tensor([0.7, -0.2, 0.05, 1.3, -0.9, 0.4]);
  const gradOnce = (seed: number) => {
    rg.manualSeed(seed);
    const y = rg.ditherGrad(x, { rule: "std", factor: 1 });
    assert.equal([...y.dataSync()], [...x.dataSync()], "the forward is the identity");
    const [g] = rg.grad(rg.sum(rg.mul(y, c)), [x]);
    return [...g!.dataSync()];
  };
  assert.equal(gradOnce(3), gradOnce(3), "the same seed, the same dither");
  let reported: rg.Tensor | null = null;
  const big = rg.randn([1000]).requireGrad();
  const [q] = rg.grad(rg.sum(rg.mul(rg.ditherGrad(big, { rule: "std", factor: 2, onSparsity: (t) => void (reported = t) }), rg.randn([1000]))), [big]);
  const zeros = q!.dataSync().filter((v) => v === 0).length / 1000;
  assert.ok(zeros > 0.3 && zeros < 1, `zero fraction ${zeros}`);
  assertClose([reported!.item()], [zeros], "onSparsity reports the zero fraction of the gradient handed on", { rtol: 1e-6, atol: 0 });
  assert.not.equal(gradOnce(3), gradOnce(4), "another seed, another dither");
  const draws = 2000;
  const mean = new Float64Array(6);
  for (let d = 0; d < draws; d++) gradOnce(100 + d).forEach((v, i) => (mean[i] += v / draws));
  const sd = Math.sqrt([...c.dataSync()].reduce((s, v) => s + v * v, 0) / 6 - ([...c.dataSync()].reduce((s, v) => s + v, 0) / 6) ** 2);
  assertClose([...mean], c, "mean dithered gradient", { rtol: 0, atol: 5 * sd / (2 * Math.sqrt(draws)) });
});

function mlp(): rg.nn.Module {
  return new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 4, 3, { padding: 1 }), new rg.nn.ReLU(), new rg.nn.Flatten(),
    new rg.nn.Linear(4 * 6 * 6, 8), new rg.nn.ReLU(), new rg.nn.Linear(8, 3),
  );
}

test("DitheredBackprop on a model: forward untouched, per-layer sparsity in (0, 1), gradients average to the exact ones, remove() restores exact backprop", async () => {
  rg.manualSeed(5);
  const model = mlp();
  const x = rg.randn([5, 1, 6, 6]);
  const labels = [0, 1, 2, 1, 0];
  const params = model.parameters();
  const gradsOf = () => rg.grad(rg.crossEntropy(model.forward(x), labels), params).map((g) => [...g!.dataSync()]);
  const logits = [...model.forward(x).dataSync()];
  const exact = gradsOf();
  const dither = new rg.nn.DitheredBackprop(model, { rule: "std", factor: 1 });
  assert.equal(dither.layers, ["0", "3", "5"], "every Conv2d and Linear");
  assert.equal([...model.forward(x).dataSync()], logits, "the forward is the model's own");
  const draws = 600;
  const mean = exact.map((g) => new Float64Array(g.length));
  let single: number[][] = [];
  for (let d = 0; d < draws; d++) {
    single = gradsOf();
    single.forEach((g, p) => g.forEach((v, i) => (mean[p][i] += v / draws)));
    if (d === 0) {
      const sparsity = await dither.readSparsity();
      assert.equal(Object.keys(sparsity).sort(), ["0", "3", "5"]);
      for (const [layer, s] of Object.entries(sparsity)) assert.ok(s > 0 && s < 1, `layer ${layer}: sparsity ${s}`);
    }
  }
  const relError = (a: ArrayLike<number>, b: number[]) => {
    let num = 0, den = 0;
    b.forEach((v, i) => ((num += (a[i] - v) ** 2), (den += v * v)));
    return Math.sqrt(num / den);
  };
  exact.forEach((g, p) => {
    const averaged = relError(mean[p], g), once = relError(single[p], g);
    assert.ok(averaged < 0.15 && averaged < once / 5, `parameter ${p}: the mean's error ${averaged.toFixed(3)}, one draw's ${once.toFixed(3)}`);
  });
  dither.remove();
  gradsOf().forEach((g, p) => assert.equal(g, exact[p], `parameter ${p}: exact again after remove()`));
});

test("dither options are checked: rule and factor named in the error", () => {
  const x = rg.tensor([1, 2]).requireGrad();
  assert.throws(() => rg.ditherGrad(x, { rule: "mean" as "std", factor: 1 }), (e: Error) => e instanceof rg.ValueError && /"mean"/.test(e.message));
  assert.throws(() => new rg.nn.DitheredBackprop(mlp(), { rule: "std", factor: 0 }), (e: Error) => e instanceof rg.ValueError && /factor/.test(e.message));
});

gpuTest("webgpu: the same seed gives the CPU's dithered gradient and sparsity (maxabs rule: Δ exact on both)", async (g) => {
  const n = 517;
  const [xc, xg] = both(randomValues(n, 31), [n], g, true);
  const [dyc, dyg] = both(randomValues(n, 32, -2, 2), [n], g);
  const zeroFractions: rg.Tensor[] = [];
  for (const [x, dy] of [[xc, dyc], [xg, dyg]] as const) {
    rg.manualSeed(9);
    rg.ditherGrad(x, { rule: "maxabs", factor: 1, onSparsity: (t) => void zeroFractions.push(t) }).backward(dy);
  }
  await compare(xg.grad!, xc.grad!, "dithered gradient", ELEMENTWISE);
  const [onCpu, onGpu] = await Promise.all(zeroFractions.map((t) => t.data()));
  assert.ok(onCpu[0] > 0.3, `a visible sparsity: ${onCpu[0]}`);
  assert.ok(Math.abs(onGpu[0] - onCpu[0]) < 1e-6, `zero fraction: ${onGpu[0]} on the GPU, ${onCpu[0]} on the CPU`);
});

test.run();
