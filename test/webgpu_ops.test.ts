/// <reference types="@webgpu/types" />
/**
 * The generic op tier on the WebGPU backend against the CPU backend, kernel by kernel through
 * the ops, forward and backward: every unary op code (pow at each fast path and beyond),
 * maximum/minimum, the comparisons and where with broadcasting, the axis reductions in both
 * kernel forms (a thread per output for short axes, a workgroup per output for long ones),
 * and Bernoulli fills. NaN, ±Inf and ±0 are among the inputs: where the CPU gives a
 * non-finite value the GPU must give the same one. Tolerances as test/webgpu.test.ts's
 * (test/support/gpu.ts); selections (indices, masks, where, max/min) must agree exactly.
 * Skipped where no adapter exists (Node; Deno without a driver); sizes are kept small for
 * lavapipe.
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { both, compare, cpu, ELEMENTWISE, forwardAndBackward, gpuTest, randomValues, REDUCTION } from "./support/gpu.ts";

type Tolerance = { rtol: number; atol: number };

/** randomValues with NaN, ±Inf, ±0 and halves (round's ties) put in, in SIMD blocks and the tail on the CPU side. */
function withSpecials(n: number, key: number, lo: number, hi: number): Float32Array {
  const v = randomValues(n, key, lo, hi);
  [[1, NaN], [6, Infinity], [9, -Infinity], [12, 0], [14, -0], [20, 0.5], [21, 1.5], [22, 2.5], [23, -0.5], [24, -2.5],
    [n - 1, NaN]].forEach(([i, x]) => (v[i] = x));
  return v;
}

gpuTest("webgpu: every unary op forward and backward, with NaN, ±Inf and ±0 among the inputs", async (g) => {
  const n = 301;
  const cases: [string, (t: rg.Tensor) => rg.Tensor, number, number][] = [
    ["exp", rg.exp, -6, 6], ["log", rg.log, -0.5, 5], ["sqrt", rg.sqrt, -0.5, 5], ["rsqrt", rg.rsqrt, -0.5, 5],
    ["abs", rg.abs, -3, 3], ["sign", rg.sign, -3, 3], ["neg", rg.neg, -3, 3], ["square", rg.square, -3, 3],
    ["tanh", rg.tanh, -12, 12], ["tanh near 0", rg.tanh, -0.2, 0.2], ["floor", (t) => rg.floor(t), -4, 4],
    ["round", (t) => rg.round(t), -4, 4], ["clamp", (t) => rg.clamp(t, -1, 0.5), -3, 3],
    ["clamp max", (t) => rg.clamp(t, null, 0.25), -3, 3],
  ];
  for (const p of [3, 2, 0.5, -0.5, -1, -2, 0, 1, 2.5, -1.5, 4]) cases.push([`pow ${p}`, (t) => rg.pow(t, p), -3, 3]);
  for (const [name, f, lo, hi] of cases) await forwardAndBackward(g, name, withSpecials(n, 201, lo, hi), [n], f, ELEMENTWISE, 202);
});

gpuTest("webgpu: maximum/minimum, the comparisons and where, broadcast, with NaN and ties; gradients", async (g) => {
  const a = randomValues(2 * 3 * 4, 211, -2, 2).map((v) => Math.round(v)), b = randomValues(3, 212, -2, 2).map((v) => Math.round(v));
  a[3] = NaN;
  a[10] = Infinity;
  b[1] = NaN;
  const mask = Float32Array.from([1, 0, NaN, 0, 1, 1, 0, 0]);
  for (const [name, f] of [["maximum", rg.maximum], ["minimum", rg.minimum]] as const) {
    const [ac, ag] = both(a, [2, 3, 4], g, true);
    const [bc, bg] = both(b, [3, 1], g, true);
    const yc = f(ac, bc), yg = f(ag, bg);
    await compare(yg, yc, name, ELEMENTWISE);
    const [dyc, dyg] = both(randomValues(24, 213), [2, 3, 4], g);
    yc.backward(dyc);
    yg.backward(dyg);
    await compare(ag.grad!, ac.grad!, `${name} da`, ELEMENTWISE);
    await compare(bg.grad!, bc.grad!, `${name} db`, REDUCTION);
  }
  for (const [name, f] of [["eq", rg.eq], ["ne", rg.ne], ["lt", rg.lt], ["le", rg.le], ["gt", rg.gt], ["ge", rg.ge]] as const) {
    const [ac, ag] = both(a, [2, 3, 4], g);
    const [bc, bg] = both(b, [3, 1], g);
    await compare(f(ag, bg), f(ac, bc), name, { rtol: 0, atol: 0 });
  }
  const [mc, mg] = both(mask, [2, 1, 4], g);
  const [ac, ag] = both(a, [2, 3, 4], g, true);
  const [bc, bg] = both(randomValues(4, 214), [4], g, true);
  const yc = rg.where(mc, ac, bc), yg = rg.where(mg, ag, bg);
  await compare(yg, yc, "where", { rtol: 0, atol: 0 });
  const [dyc, dyg] = both(randomValues(24, 215), [2, 3, 4], g);
  yc.backward(dyc);
  yg.backward(dyg);
  await compare(ag.grad!, ac.grad!, "where da", ELEMENTWISE);
  await compare(bg.grad!, bc.grad!, "where db", REDUCTION);
  await compare(rg.where(mg, 0, ag), rg.where(mc, 0, ac), "where with a number", { rtol: 0, atol: 0 });
});

gpuTest("webgpu: axis reductions (a thread or a workgroup per output), forward and backward, with NaN and ±Inf", async (g) => {
  const shape = [3, 40, 5];
  const n = 600;
  const plain = randomValues(n, 221, -3, 3);
  const ties = plain.map((v) => Math.round(v));
  const special = withSpecials(n, 222, -3, 3);
  const cases: [string, Float32Array, (t: rg.Tensor) => rg.Tensor, Tolerance][] = [
    ["sum axis 1 (40 terms: workgroups)", plain, (t) => rg.sum(t, 1), REDUCTION],
    ["sum axes 0, 2 (short: threads)", plain, (t) => rg.sum(t, [0, 2], true), REDUCTION],
    ["mean axis 2", special, (t) => rg.mean(t, -1), REDUCTION],
    ["mean axes 0, 1", plain, (t) => rg.mean(t, [0, 1]), REDUCTION],
    ["amax axis 1 (ties)", ties, (t) => rg.amax(t, 1), REDUCTION],
    ["amin axes 0, 2 (ties)", ties, (t) => rg.amin(t, [0, 2], true), REDUCTION],
    ["amax with NaN", special, (t) => rg.amax(t, [1, 2]), REDUCTION],
    ["var axis 1", plain, (t) => rg.variance(t, 1), REDUCTION],
    ["std axes 0, 2", plain, (t) => rg.std(t, [0, 2], { correction: 0 }), REDUCTION],
    ["norm 1", special, (t) => rg.norm(t, 1, 2), REDUCTION],
    ["norm 2", plain, (t) => rg.norm(t, 2, [0, 1], true), REDUCTION],
    ["norm ∞ (ties)", ties, (t) => rg.norm(t, Infinity, 1), REDUCTION],
  ];
  for (const [name, values, f, tol] of cases) await forwardAndBackward(g, name, values, shape, f, tol, 223);
  for (const [name, values, axis] of [["ties", ties, 1], ["NaN and ±Inf", special, 2], ["ties, short", ties, 0]] as const) {
    for (const op of [rg.max, rg.min]) {
      const [xc, xg] = both(values, shape, g, true);
      const rc = op(xc, axis, true), rgpu = op(xg, axis, true);
      const label = `${op === rg.max ? "max" : "min"} along ${axis} (${name})`;
      await compare(rgpu.values, rc.values, `${label} values`, { rtol: 0, atol: 0 });
      await compare(rgpu.indices, rc.indices, `${label} indices`, { rtol: 0, atol: 0 });
      const [dyc, dyg] = both(randomValues(rc.values.size, 224), rc.values.shape, g);
      rc.values.backward(dyc);
      rgpu.values.backward(dyg);
      await compare(xg.grad!, xc.grad!, `${label} backward`, { rtol: 0, atol: 0 });
    }
  }
});

gpuTest("webgpu: Bernoulli draws are bit-identical to the CPU's", async (g) => {
  for (const [p, seed, n] of [[0.3, 5, 1001], [0.5, 6, 64], [0.999, 7, 300]] as const) {
    rg.manualSeed(seed);
    const c = rg.bernoulli([n], p, cpu());
    rg.manualSeed(seed);
    const d = rg.bernoulli([n], p, g);
    assert.equal([...(await d.data())], [...c.dataSync()], `bernoulli(${p})`);
  }
});

test.run();
