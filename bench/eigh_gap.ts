/**
 * The eigendecomposition experiment of docs/variants.md (ops/eigh.ts; Wang et al., NeurIPS
 * 2019): how the eigenvector gradient's size follows the gap between the two largest
 * eigenvalues, under the analytic backward and the power-iteration backward (K = 19), and
 * how far the two differ. For each gap and seed: a random orthogonal Q, M = Q diag(4 + gap,
 * 4, 2, 1, 0.5, 0.25) Qᵀ, a random upstream gradient G on the eigenvectors, and the norms of
 * dL/dM under both rules. Not a timing: it prints JSON on stdout.
 *
 *   deno run -A bench/eigh_gap.ts > docs/data/variants/eigh_gap.json
 */
import * as rg from "../src/mod.ts";

const K = 19;
const gaps = [1, 0.3, 0.1, 1e-2, 1e-3, 1e-4, 1e-5, 0];
const seeds = [0, 1, 2];

/** Q diag(λ) Qᵀ for a seeded random orthogonal Q (QR of a Gaussian matrix by Gram–Schmidt). */
function withSpectrum(lambdas: number[]): rg.Tensor {
  const n = lambdas.length;
  const a = rg.randn([n, n]).dataSync();
  const q = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const v = Array.from({ length: n }, (_, r) => a[r * n + c]);
    for (let p = 0; p < c; p++) {
      const dot = v.reduce((s, x, r) => s + x * q[r * n + p], 0);
      v.forEach((_, r) => (v[r] -= dot * q[r * n + p]));
    }
    const norm = Math.hypot(...v);
    v.forEach((x, r) => (q[r * n + c] = x / norm));
  }
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q[i * n + k] * lambdas[k] * q[j * n + k];
      m[i * n + j] = m[j * n + i] = s;
    }
  }
  return rg.tensor(m, [n, n]);
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

const rows = [];
for (const gap of gaps) {
  for (const seed of seeds) {
    rg.manualSeed(seed);
    const M = withSpectrum([4 + gap, 4, 2, 1, 0.5, 0.25]).requireGrad();
    const G = rg.randn(M.shape);
    const gradWith = (backward: "power-iteration" | "analytic") =>
      rg.grad(rg.sum(rg.mul(rg.eigh(M, { backward, iterations: K }).vectors, G)), [M])[0]!.dataSync();
    const friendly = gradWith("power-iteration"), analytic = gradWith("analytic");
    const difference = norm(friendly.map((v, i) => v - analytic[i]));
    rows.push({
      gap, seed, powerIterationNorm: norm(friendly), analyticNorm: norm(analytic),
      relativeDifference: difference / norm(analytic),
    });
  }
}
console.log(JSON.stringify({ K, spectrum: "4 + gap, 4, 2, 1, 0.5, 0.25", rows }, null, 1));
