/**
 * ZCA whitening of groups of channels (the normalisation of Wang, Nie, Salzmann & Fua,
 * "Backpropagation-Friendly Eigendecomposition", NeurIPS 2019, after Huang et al.'s
 * decorrelated BatchNorm). For x [N, C, H, W] with C split into groups of g channels, each
 * group's rows X [g, m] (m = N·H·W samples) are centred, Xc = X − μ, their covariance
 * Σ = XcXcᵀ/m + εI is decomposed exactly, Σ = V diag(λ) Vᵀ (Jacobi, jacobi.ts), and the output
 * is Y = W·Xc with W = V diag(λ^-1/2) Vᵀ: every group decorrelated, each channel of unit variance.
 *
 * The backward is written out, per group, in float64: with Ḡ = dL/dW = dY·Xcᵀ,
 *   dL/dλᵢ = −½ λᵢ^-3/2 vᵢᵀḠvᵢ,   dL/dvᵢ = λᵢ^-1/2 (Ḡ + Ḡᵀ) vᵢ,
 * dL/dΣ from those by eigh's rule (eigh.ts eighGradient: the power-iteration gradient, bounded
 * where eigenvalues meet, or the analytic one), then dL/dXc = W·dY + 2·dL/dΣ·Xc/m and
 * dL/dX = dL/dXc minus its mean over the samples. Host code on the CPU backend, like eigh: the
 * groups are small (g × g) and the decomposition is synchronous.
 */
import { customGrad } from "../functional.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { tensor, type Tensor } from "../tensor.ts";
import { type EighBackward, eighGradient, matmulRows, sandwich } from "./eigh.ts";
import { symmetricEigen, type SymmetricEigen } from "./jacobi.ts";
import { fmt } from "./util.ts";

export interface ZcaOptions {
  /** Channels per whitened group (divides C). */
  groupSize: number;
  /** Added to Σ's diagonal. */
  eps: number;
  /** Σ's eigendecomposition's backward rule (eigh.ts). */
  backward: EighBackward;
  /** Power-iteration steps of that backward. */
  iterations: number;
}

/** The batch statistics a training forward pass measured, for running averages: per channel and per group. */
export interface ZcaStatistics {
  /** [C] */
  mean: Float64Array;
  /** [C/g, g, g], without ε. */
  covariance: Float64Array;
}

/** Y = W(x − μ) per group from the batch's own statistics, differentiable; `onStatistics` receives them. */
export function zcaWhiten(x: Tensor, opts: ZcaOptions, onStatistics?: (s: ZcaStatistics) => void): Tensor {
  const { n, c, hw, g } = checkInput(x, opts);
  // The caller may dispose x once the forward pass is done: the backward pass keeps what it needs.
  const { shape, backend } = x;
  // What the forward pass measured, per group, for the backward pass.
  let state: { xc: Float64Array; eig: SymmetricEigen; w: Float64Array }[] = [];
  const op = customGrad({
    name: "zcaWhiten",
    forward: (input) => {
      const data = input.dataSync();
      const groups = [];
      const mean = new Float64Array(c), covariance = new Float64Array(c * g);
      const out = new Float32Array(input.size);
      for (let first = 0; first < c; first += g) {
        const xc = groupRows(data, n, c, hw, first, g);
        const m = n * hw;
        for (let r = 0; r < g; r++) mean[first + r] = xc.mean[r];
        const sigma = covarianceOf(xc.rows, g, m);
        covariance.set(sigma, first * g);
        for (let i = 0; i < g; i++) sigma[i * g + i] += opts.eps;
        const eig = symmetricEigen(sigma, g);
        const w = whitening(eig, g);
        scatterRows(out, matmulRows(w, xc.rows, g, m), n, c, hw, first, g);
        groups.push({ xc: xc.rows, eig, w });
      }
      onStatistics?.({ mean, covariance });
      state = groups;
      return { output: tensor(out, input.shape, input.backend) };
    },
    backward: (dy) => {
      const dyData = dy.dataSync();
      const dx = new Float32Array(dy.size);
      const m = n * hw;
      state.forEach(({ xc, eig, w }, index) => {
        const first = index * g;
        const dyRows = groupRows(dyData, n, c, hw, first, g, false).rows;
        const gw = new Float64Array(g * g); // dL/dW = dY·Xcᵀ
        for (let i = 0; i < g; i++) {
          for (let j = 0; j < g; j++) {
            let s = 0;
            for (let k = 0; k < m; k++) s += dyRows[i * m + k] * xc[j * m + k];
            gw[i * g + j] = s;
          }
        }
        const { values: lam, vectors: V } = eig;
        const gValues = new Float64Array(g), gVectors = new Float64Array(g * g);
        for (let i = 0; i < g; i++) {
          let quad = 0;
          for (let r = 0; r < g; r++) for (let s = 0; s < g; s++) quad += V[r * g + i] * gw[r * g + s] * V[s * g + i];
          gValues[i] = -0.5 * lam[i] ** -1.5 * quad;
          for (let r = 0; r < g; r++) {
            let s = 0;
            for (let k = 0; k < g; k++) s += (gw[r * g + k] + gw[k * g + r]) * V[k * g + i];
            gVectors[r * g + i] = s / Math.sqrt(lam[i]);
          }
        }
        const gSigma = eighGradient(eig, g, gValues, gVectors, opts.backward, opts.iterations, index);
        const dxc = matmulRows(w, dyRows, g, m); // Wᵀ·dY, W symmetric
        const fromSigma = matmulRows(gSigma, xc, g, m);
        for (let i = 0; i < g * m; i++) dxc[i] += (2 / m) * fromSigma[i];
        for (let r = 0; r < g; r++) {
          let s = 0;
          for (let k = 0; k < m; k++) s += dxc[r * m + k];
          for (let k = 0; k < m; k++) dxc[r * m + k] -= s / m;
        }
        scatterRows(dx, dxc, n, c, hw, first, g);
      });
      return [tensor(dx, shape, backend)];
    },
  });
  return op(x);
}

/** Y = W(x − μ) with given statistics (evaluation: the running mean and covariance), W from covariance + εI; not differentiable. */
export function zcaWhitenWith(x: Tensor, mean: ArrayLike<number>, covariance: ArrayLike<number>, opts: Pick<ZcaOptions, "groupSize" | "eps">): Tensor {
  const { n, c, hw, g } = checkInput(x, opts);
  const data = x.dataSync();
  const out = new Float32Array(x.size);
  for (let first = 0; first < c; first += g) {
    const sigma = Float64Array.from({ length: g * g }, (_, i) => covariance[first * g + i] + (i % (g + 1) === 0 ? opts.eps : 0));
    const w = whitening(symmetricEigen(sigma, g), g);
    const rows = groupRows(data, n, c, hw, first, g, false).rows;
    for (let r = 0; r < g; r++) for (let k = 0; k < n * hw; k++) rows[r * n * hw + k] -= mean[first + r];
    scatterRows(out, matmulRows(w, rows, g, n * hw), n, c, hw, first, g);
  }
  return tensor(out, x.shape, x.backend);
}

function checkInput(x: Tensor, opts: Pick<ZcaOptions, "groupSize" | "eps">): { n: number; c: number; hw: number; g: number } {
  if (x.rank !== 4) throw new ShapeError(`zcaWhiten: expected input [N, C, H, W], got ${fmt(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const g = opts.groupSize;
  if (!Number.isInteger(g) || g < 1 || c % g !== 0) throw new ValueError(`zcaWhiten: groupSize must be a positive divisor of the ${c} channels, got ${g}`);
  if (!(opts.eps > 0)) throw new ValueError(`zcaWhiten: eps must be > 0 (Σ + εI must be positive definite), got ${opts.eps}`);
  if (x.backend.name !== "cpu") throw new ValueError(`zcaWhiten: runs on the CPU backend (its eigendecomposition reads the data synchronously), got a tensor on ${x.backend.name}`);
  if (n * h * w < 2) throw new ValueError(`zcaWhiten: needs at least 2 samples per channel for a covariance, got input ${fmt(x.shape)}`);
  return { n, c, hw: h * w, g };
}

/** Channels first..first+g of x as rows [g, N·H·W] in float64, centred (with their means) unless `centre` is false. */
function groupRows(data: Float32Array, n: number, c: number, hw: number, first: number, g: number, centre = true): { rows: Float64Array; mean: Float64Array } {
  const m = n * hw;
  const rows = new Float64Array(g * m), mean = new Float64Array(g);
  for (let r = 0; r < g; r++) {
    for (let b = 0; b < n; b++) {
      const src = (b * c + first + r) * hw;
      for (let p = 0; p < hw; p++) rows[r * m + b * hw + p] = data[src + p];
    }
    if (!centre) continue;
    let s = 0;
    for (let k = 0; k < m; k++) s += rows[r * m + k];
    mean[r] = s / m;
    for (let k = 0; k < m; k++) rows[r * m + k] -= mean[r];
  }
  return { rows, mean };
}

/** Rows [g, N·H·W] back into channels first..first+g of an [N, C, H, W] buffer. */
function scatterRows(out: Float32Array, rows: Float64Array, n: number, c: number, hw: number, first: number, g: number): void {
  const m = n * hw;
  for (let r = 0; r < g; r++) {
    for (let b = 0; b < n; b++) {
      const dst = (b * c + first + r) * hw;
      for (let p = 0; p < hw; p++) out[dst + p] = rows[r * m + b * hw + p];
    }
  }
}

/** XXᵀ/m of centred rows [g, m]. */
function covarianceOf(rows: Float64Array, g: number, m: number): Float64Array {
  const sigma = new Float64Array(g * g);
  for (let i = 0; i < g; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += rows[i * m + k] * rows[j * m + k];
      sigma[i * g + j] = sigma[j * g + i] = s / m;
    }
  }
  return sigma;
}

/** V diag(λ^-1/2) Vᵀ. */
function whitening({ values, vectors }: SymmetricEigen, g: number): Float64Array {
  const inner = new Float64Array(g * g);
  for (let i = 0; i < g; i++) inner[i * g + i] = 1 / Math.sqrt(values[i]);
  return sandwich(vectors, inner, g);
}

