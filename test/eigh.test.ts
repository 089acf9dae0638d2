/**
 * The backprop-friendly eigendecomposition (ops/eigh.ts): the forward against a float64
 * construction with a known spectrum; the power-iteration backward against the tape's own
 * derivative of the literal algorithm (K unrolled power-iteration steps per vector with
 * deflation, started at the exact eigenvectors); away from degeneracy against the analytic
 * gradient and finite differences; near and at equal eigenvalues the analytic gradient blows
 * up while the power-iteration one stays bounded; against PyTorch (torch.linalg.eigh's
 * values, vectors and analytic gradient, test/fixtures/gen_fixtures.py); bad input is refused
 * by name.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { uniform } from "../src/random.ts";
import { assertClose, gradcheck, loadFixture } from "./helpers.ts";
import { withSpectrum } from "./support/spectra.ts";

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

test("forward: eigenvalues (descending) of Q diag(λ) Qᵀ, orthonormal eigenvectors with M v = λ v, batched as one by one", () => {
  const lambdas = [9, 4, 2.5, 1, 0.3];
  const n = lambdas.length;
  const a = withSpectrum(lambdas, 1), b = withSpectrum([3, 2, 2, 1e-3, -1], 2);
  const { values, vectors } = rg.eigh(rg.tensor(a, [n, n]));
  assertClose(values, lambdas, "eigenvalues", { rtol: 1e-5, atol: 1e-6 });
  const V = vectors.dataSync();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += V[r * n + i] * V[r * n + j];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-6, `vᵢᵀvⱼ for ${i}, ${j}: ${dot}`);
    }
    const residual = Array.from({ length: n }, (_, r) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[r * n + k] * V[k * n + i];
      return s - lambdas[i] * V[r * n + i];
    });
    assert.ok(norm(residual) < 1e-5 * lambdas[0], `‖M vᵢ − λᵢ vᵢ‖ for i = ${i}: ${norm(residual)}`);
  }
  const both = rg.eigh(rg.tensor([...a, ...b], [2, n, n]));
  assert.equal(both.values.shape, [2, n]);
  assert.equal([...both.values.dataSync().subarray(0, n)], [...values.dataSync()], "batch item 0 as alone");
  assert.equal([...both.vectors.dataSync().subarray(0, n * n)], [...V], "batch item 0's vectors as alone");
  assertClose(both.values.dataSync().subarray(n), [3, 2, 2, 1e-3, -1], "batch item 1: a repeated and a negative eigenvalue", { rtol: 1e-5, atol: 1e-6 });
});

/**
 * The literal algorithm on the tape: for each i, K steps v ← Mᵢv/‖Mᵢv‖ from the exact vᵢ, with
 * Mᵢ = M − Σ_{l<i} λₗ vₗvₗᵀ, λₗ = vₗᵀMvₗ of the iterated vₗ. Returns the iterated vectors [n, 1].
 */
function unrolledPowerIteration(M: rg.Tensor, exact: Float32Array, n: number, K: number): rg.Tensor[] {
  const vs: rg.Tensor[] = [], lams: rg.Tensor[] = [];
  for (let i = 0; i < n; i++) {
    let Mi = M;
    for (let l = 0; l < i; l++) Mi = rg.sub(Mi, rg.mul(lams[l], rg.matmul(vs[l], rg.reshape(vs[l], [1, n]))));
    let v = rg.tensor(Array.from({ length: n }, (_, r) => exact[r * n + i]), [n, 1]);
    for (let k = 0; k < K; k++) {
      const w = rg.matmul(Mi, v);
      v = rg.div(w, rg.sqrt(rg.sum(rg.square(w))));
    }
    vs.push(v);
    lams.push(rg.sum(rg.mul(v, rg.matmul(M, v))));
  }
  return vs;
}

function symmetrised(g: Float32Array, n: number): number[] {
  return Array.from({ length: n * n }, (_, k) => (g[k] + g[Math.floor(k % n) * n + Math.floor(k / n)]) / 2);
}

for (const [label, lambdas, K] of [
  ["separated spectrum, K = 19", [6, 3, 2, 1], 19],
  ["separated spectrum, K = 4", [6, 3, 2, 1], 4],
  ["two close eigenvalues, K = 19", [5, 4.9, 1, 0.5], 19],
] as const) {
  test(`power-iteration backward equals the tape's derivative of ${K} unrolled power-iteration steps with deflation (${label})`, () => {
    const n = lambdas.length;
    const M = rg.tensor(withSpectrum([...lambdas], 3), [n, n]).requireGrad();
    rg.manualSeed(7);
    const G = rg.randn([n, n]);
    const { vectors } = rg.eigh(M, { iterations: K });
    const [ours] = rg.grad(rg.sum(rg.mul(vectors, G)), [M]);
    const iterated = unrolledPowerIteration(M, vectors.dataSync(), n, K);
    const Gv = G.dataSync();
    const loss = iterated.reduce((total: rg.Tensor | null, v, i) => {
      const term = rg.sum(rg.mul(v, rg.tensor(Array.from({ length: n }, (_, r) => Gv[r * n + i]), [n, 1])));
      return total ? rg.add(total, term) : term;
    }, null)!;
    const [reference] = rg.grad(loss, [M]);
    const expected = symmetrised(reference!.dataSync(), n);
    assertClose(ours!, expected, `dL/dM (${label})`, { rtol: 2e-3, atol: 2e-4 * norm(expected) });
    if (label.startsWith("two close")) {
      const { vectors: exactVectors } = rg.eigh(M, { backward: "analytic" });
      const [analytic] = rg.grad(rg.sum(rg.mul(exactVectors, G)), [M]);
      const difference = norm(analytic!.dataSync().map((v, k) => v - expected[k]));
      assert.ok(difference > 0.2 * norm(expected), `here the analytic gradient differs (by ${difference}): the check can tell them apart`);
    }
  });
}

test("well separated: the power-iteration gradient equals the analytic one and finite differences, through M = X Xᵀ (eigenvectors and eigenvalues)", () => {
  const n = 4, cols = 6;
  const x = new Float32Array(n * cols);
  [3, 2, 1.4, 1].forEach((s, i) => (x[i * cols + i] = s));
  for (let k = 0; k < x.length; k++) x[k] += 0.05 * (uniform(11, k) - 0.5);
  const X = rg.tensor(x, [n, cols]);
  const cov = (t: rg.Tensor) => rg.linear(t, t); // X Xᵀ
  for (const backward of ["power-iteration", "analytic"] as const) {
    gradcheck(`eigenvectors (${backward})`, ([t]) => rg.eigh(cov(t), { backward }).vectors, [X], { h: 1e-2, rtol: 1e-2, atol: 2e-3 });
    gradcheck(`eigenvalues (${backward})`, ([t]) => rg.eigh(cov(t), { backward }).values, [X], { h: 1e-2, rtol: 1e-2, atol: 2e-3 });
  }
  const M = cov(X).detach().requireGrad();
  rg.manualSeed(8);
  const G = rg.randn([n, n]);
  const gradWith = (backward: "power-iteration" | "analytic") => rg.grad(rg.sum(rg.mul(rg.eigh(M, { backward }).vectors, G)), [M])[0]!;
  assertClose(gradWith("power-iteration"), gradWith("analytic"), "power iteration vs analytic", { rtol: 1e-4, atol: 1e-5 });
});

test("near-equal eigenvalues: the analytic gradient blows up (~1/gap, Inf at a tie) while the power-iteration one stays below K/λ·‖G‖", () => {
  const n = 4, K = 19;
  rg.manualSeed(9);
  const G = rg.randn([n, n]);
  const bound = K * norm(G.dataSync()); // |K̃ᵢⱼ| ≤ K/λ with the smallest eigenvalue 1, and V is orthogonal
  for (const gap of [1e-1, 1e-3, 1e-5]) {
    const M = rg.tensor(withSpectrum([4 + gap, 4, 2, 1], 4), [n, n]).requireGrad();
    const gradWith = (backward: "power-iteration" | "analytic") =>
      rg.grad(rg.sum(rg.mul(rg.eigh(M, { backward }).vectors, G)), [M])[0]!.dataSync();
    const friendly = norm(gradWith("power-iteration")), analytic = norm(gradWith("analytic"));
    assert.ok(Number.isFinite(friendly) && friendly < bound, `gap ${gap}: power-iteration gradient norm ${friendly} (bound ${bound})`);
    if (gap <= 1e-3) assert.ok(analytic > 20 * friendly, `gap ${gap}: analytic ${analytic} against power iteration ${friendly}`);
  }
  // An exact tie (a float32 matrix whose float64 eigenvalues coincide): diag(2, 2, 1).
  const tie = rg.tensor([2, 0, 0, 0, 2, 0, 0, 0, 1], [3, 3]).requireGrad();
  const H = rg.tensor([0.3, -1, 0.5, 2, 0.1, -0.4, 0.7, 0.2, 1], [3, 3]);
  const tied = (backward: "power-iteration" | "analytic") => rg.grad(rg.sum(rg.mul(rg.eigh(tie, { backward }).vectors, H)), [tie])[0]!.dataSync();
  assert.ok(tied("power-iteration").every(Number.isFinite), "power iteration: finite at a tie");
  assert.ok(!tied("analytic").every(Number.isFinite), "analytic: not finite at a tie");
});

test("PyTorch: torch.linalg.eigh's eigenvalues, eigenvectors and analytic gradient (one matrix and a batch of two)", () => {
  const fx = loadFixture("eigh.safetensors");
  for (const c of ["single", "batch"]) {
    assert.ok((fx.meta(c) as { smallest_gap: number }).smallest_gap > 0.05, `${c}: well separated`);
    const m = rg.tensor(fx.get(`${c}.m`).dataSync(), fx.get(`${c}.m`).shape).requireGrad();
    const { values, vectors } = rg.eigh(m, { backward: "analytic" });
    assertClose(values, fx.get(`${c}.values`), `${c}: eigenvalues`, { rtol: 1e-5, atol: 1e-5 });
    assertClose(vectors, fx.get(`${c}.vectors`), `${c}: eigenvectors`, { rtol: 1e-3, atol: 1e-5 });
    rg.add(rg.sum(rg.mul(values, fx.get(`${c}.dvalues`))), rg.sum(rg.mul(vectors, fx.get(`${c}.dvectors`)))).backward();
    assertClose(m.grad!, fx.get(`${c}.dm`), `${c}: dL/dM`, { rtol: 1e-3, atol: 1e-4 });
  }
});

test("bad input: not square, not symmetric, NaN, a non-positive-definite matrix under the power-iteration backward, bad options", () => {
  const isValue = (pattern: RegExp) => (e: Error) => e instanceof rg.ValueError && pattern.test(e.message);
  assert.throws(() => rg.eigh(rg.zeros([2, 3])), (e: Error) => e instanceof rg.ShapeError && /\[2, 3\]/.test(e.message));
  assert.throws(() => rg.eigh(rg.tensor([1, 2, 0, 1], [2, 2])), isValue(/not symmetric/));
  assert.throws(() => rg.eigh(rg.tensor([1, 2, 2, 1, 1, NaN, NaN, 1], [2, 2, 2])), isValue(/matrix 1 is not symmetric.*NaN/));
  const indefinite = rg.tensor([1, 0, 0, -1], [2, 2]).requireGrad();
  const { vectors } = rg.eigh(indefinite);
  assert.throws(() => rg.grad(rg.sum(rg.mul(vectors, rg.tensor([1, 2, 3, 4], [2, 2]))), [indefinite]), isValue(/positive definite.*eigenvalue -1/));
  assert.throws(() => rg.eigh(rg.zeros([2, 2]), { iterations: 1 }), isValue(/iterations/));
  assert.throws(() => rg.eigh(rg.zeros([2, 2]), { backward: "svd" as "analytic" }), isValue(/"svd"/));
});

test.run();
