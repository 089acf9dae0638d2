/**
 * The float32 error of the WebGPU eigensolver (gpu/kernels/jacobi.ts) against the CPU's
 * float64 Jacobi, for docs/variants.md. For each n, 20 seeded random symmetric positive
 * definite matrices Q diag(λ) Qᵀ with λ uniform in [0.1, 1] (so ‖M‖ ≤ 1), decomposed in one
 * batched call on each backend: the largest eigenvalue error, the largest residual
 * ‖M vᵢ − λᵢ vᵢ‖, the largest |VᵀV − I| entry (all against ‖M‖ = 1), and the largest
 * eigenvector difference times the smallest gap (Davis–Kahan: that product is what float32
 * rounding bounds). Not a timing: it prints JSON on stdout. Needs a WebGPU adapter (lavapipe
 * will do).
 *
 *   deno run -A bench/eigh_webgpu_error.ts > docs/data/variants/eigh_webgpu_error.json
 */
import * as rg from "../src/mod.ts";
import { uniform } from "../src/random.ts";
import { JACOBI_SWEEPS } from "../gpu/kernels/jacobi.ts";
import { withSpectrum } from "../test/support/spectra.ts";

const gpu = await rg.createWebGPUBackend({ allowFallback: true });
if (!gpu) throw new Error("eigh_webgpu_error: no WebGPU adapter in this runtime");
rg.registerBackend(gpu);
const cpu = rg.getBackend("cpu");
const count = 20;

function spd(n: number, seed: number): { m: Float32Array; lambdas: number[] } {
  const lambdas = Array.from({ length: n }, (_, k) => 0.1 + 0.9 * uniform(seed, 1000 + k)).sort((a, b) => b - a);
  return { m: withSpectrum(lambdas, seed), lambdas };
}

const rows = [];
for (const n of [2, 4, 8, 16, 32]) {
  const cases = Array.from({ length: count }, (_, b) => spd(n, 100 * n + b));
  const data = new Float32Array(count * n * n);
  cases.forEach((c, b) => data.set(c.m, b * n * n));
  const exact = rg.eigh(rg.tensor(data, [count, n, n], cpu));
  const ours = rg.eigh(rg.tensor(data, [count, n, n], gpu));
  const [lc, vc, lg, vg] = [exact.values.dataSync(), exact.vectors.dataSync(), await ours.values.data(), await ours.vectors.data()];
  let value = 0, residual = 0, orthogonality = 0, vectorTimesGap = 0;
  for (let b = 0; b < count; b++) {
    const o = b * n * n, m = cases[b].m;
    let gap = Infinity;
    for (let i = 0; i + 1 < n; i++) gap = Math.min(gap, lc[b * n + i] - lc[b * n + i + 1]);
    for (let i = 0; i < n; i++) {
      value = Math.max(value, Math.abs(lg[b * n + i] - lc[b * n + i]));
      let r2 = 0;
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += m[r * n + k] * vg[o + k * n + i];
        r2 += (s - lg[b * n + i] * vg[o + r * n + i]) ** 2;
        vectorTimesGap = Math.max(vectorTimesGap, Math.abs(vg[o + r * n + i] - vc[o + r * n + i]) * gap);
      }
      residual = Math.max(residual, Math.sqrt(r2));
      for (let j = 0; j < n; j++) {
        let dot = 0;
        for (let r = 0; r < n; r++) dot += vg[o + r * n + i] * vg[o + r * n + j];
        orthogonality = Math.max(orthogonality, Math.abs(dot - (i === j ? 1 : 0)));
      }
    }
  }
  rows.push({ n, matrices: count, value, residual, orthogonality, vectorTimesGap });
}
console.log(JSON.stringify({ sweeps: JACOBI_SWEEPS, adapter: gpu.adapterDescription, float32Epsilon: 2 ** -23, rows }, null, 2));
