/**
 * Symmetric matrices with a chosen spectrum, for the eigendecomposition tests (test/eigh.test.ts,
 * test/webgpu_eigh.test.ts) and bench/eigh_webgpu_error.ts: Q diag(λ) Qᵀ with Q a seeded
 * random orthogonal matrix (Gram–Schmidt in float64 on the shared hash's values), rounded to
 * float32 and made exactly symmetric.
 */
import { uniform } from "../../src/random.ts";

/** A seeded random orthogonal [n, n] matrix (Gram–Schmidt in float64), row-major. */
export function orthogonal(n: number, seed: number): Float64Array {
  const q = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const v = Array.from({ length: n }, (_, r) => uniform(seed, c * n + r) - 0.5);
    for (let p = 0; p < c; p++) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += v[r] * q[r * n + p];
      for (let r = 0; r < n; r++) v[r] -= dot * q[r * n + p];
    }
    const norm = Math.hypot(...v);
    for (let r = 0; r < n; r++) q[r * n + c] = v[r] / norm;
  }
  return q;
}

/** Q diag(λ) Qᵀ as float32, row-major, the lower triangle a copy of the upper one. */
export function withSpectrum(lambdas: readonly number[], seed: number): Float32Array {
  const n = lambdas.length, q = orthogonal(n, seed), m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += q[i * n + k] * lambdas[k] * q[j * n + k];
      m[i * n + j] = m[j * n + i] = s;
    }
  }
  return m;
}
