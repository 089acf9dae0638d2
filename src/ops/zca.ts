/**
 * ZCA whitening of groups of channels (the normalisation of Wang, Nie, Salzmann & Fua,
 * "Backpropagation-Friendly Eigendecomposition", NeurIPS 2019, after Huang et al.'s
 * decorrelated BatchNorm). For x [N, C, H, W] with C split into groups of g channels, each
 * group's rows X [g, m] (m = N·H·W samples) are centred, Xc = X − μ, their covariance
 * Σ = XcXcᵀ/m + εI is decomposed exactly, Σ = V diag(λ) Vᵀ (eigh.ts), and the output is
 * Y = W·Xc with W = V diag(λ^-1/2) Vᵀ: every group decorrelated, each channel of unit variance.
 *
 * Written in tensor ops, so it runs on every backend and the tape differentiates it: the
 * group covariances are the weight-gradient kernel of a 1×1 convolution with C/g groups
 * (Σ_{n,p} xc[n, o, p]·xc[n, c, p] within each group; its backward, (dΣ + dΣᵀ)·Xc/m, the
 * forward and input-gradient kernels with dΣ as the weights), W is a product of the small
 * [C/g, g, g] stack (batched_matmul.ts), and Y is that 1×1 grouped convolution with W as its
 * weights. The eigendecomposition's backward follows eigh's rule (the power-iteration
 * gradient, bounded where eigenvalues meet, or the analytic one).
 */
import { noGrad, record } from "../autograd.ts";
import type { ConvGeometry } from "../backend/backend.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { empty, tensor, type Tensor, tidy } from "../tensor.ts";
import { batchedMatmul } from "./batched_matmul.ts";
import { conv2d } from "./conv.ts";
import { type EighBackward, eigh } from "./eigh.ts";
import { add, mul, scale, sub } from "./elementwise.ts";
import { mean } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { rsqrt } from "./unary.ts";
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

/** The batch statistics a training forward pass measured, for running averages (valid during the callback). */
export interface ZcaStatistics {
  /** [C] */
  mean: Tensor;
  /** [C/g, g, g], without ε. */
  covariance: Tensor;
}

/** Y = W(x − μ) per group from the batch's own statistics, differentiable; `onStatistics` receives them. */
export function zcaWhiten(x: Tensor, opts: ZcaOptions, onStatistics?: (s: ZcaStatistics) => void): Tensor {
  const { c } = checkInput(x, opts);
  return tidy(() => {
    const mu = mean(x, [0, 2, 3], true);
    const xc = sub(x, mu);
    const covariance = groupCovariance(xc, opts.groupSize);
    if (onStatistics) noGrad(() => onStatistics({ mean: reshape(mu, [c]), covariance }));
    return whiten(xc, covariance, opts);
  });
}

/** Y = W(x − μ) with given statistics (evaluation: the running ones), W from covariance + εI. */
export function zcaWhitenWith(x: Tensor, statistics: ZcaStatistics, opts: Pick<ZcaOptions, "groupSize" | "eps">): Tensor {
  const { c } = checkInput(x, opts);
  // The statistics are buffers that take no gradient, so eigh's backward rule (analytic here) does not matter.
  return tidy(() => whiten(sub(x, reshape(statistics.mean, [1, c, 1, 1])), statistics.covariance, { ...opts, backward: "analytic", iterations: 2 }));
}

function checkInput(x: Tensor, opts: Pick<ZcaOptions, "groupSize" | "eps">): { c: number } {
  if (x.rank !== 4) throw new ShapeError(`zcaWhiten: expected input [N, C, H, W], got ${fmt(x.shape)}`);
  const [n, c, h, w] = x.shape;
  const g = opts.groupSize;
  if (!Number.isInteger(g) || g < 1 || c % g !== 0) throw new ValueError(`zcaWhiten: groupSize must be a positive divisor of the ${c} channels, got ${g}`);
  if (!(opts.eps > 0)) throw new ValueError(`zcaWhiten: eps must be > 0 (Σ + εI must be positive definite), got ${opts.eps}`);
  if (n * h * w < 2) throw new ValueError(`zcaWhiten: needs at least 2 samples per channel for a covariance, got input ${fmt(x.shape)}`);
  return { c };
}

/** The 1×1 convolution with C/g groups that maps channel groups of xc [N, C, H, W] by [g, g] matrices. */
function groupGeometry(xc: Tensor, g: number): ConvGeometry {
  const [N, C, H, W] = xc.shape;
  return { N, C, H, W, O: C, KH: 1, KW: 1, SH: 1, SW: 1, PH: 0, PW: 0, DH: 1, DW: 1, G: C / g, OH: H, OW: W };
}

/** XcXcᵀ/m per group of g channels of the centred xc: [C/g, g, g], differentiable. */
function groupCovariance(xc: Tensor, g: number): Tensor {
  const geometry = groupGeometry(xc, g), backend = xc.backend;
  const samples = geometry.N * geometry.H * geometry.W;
  const products = empty([geometry.C / g, g, g], backend);
  backend.conv2dBackwardWeight(xc.buffer, xc.buffer, products.buffer, geometry);
  const covariance = scale(products, 1 / samples);
  products.dispose();
  return record("groupCovariance", covariance, [xc], [xc], (dy, [sx]) => {
    const left = empty(xc.shape, backend), right = empty(xc.shape, backend);
    backend.conv2dForward(sx.buffer, dy.buffer, left.buffer, geometry); // dΣ·Xc
    backend.conv2dBackwardInput(sx.buffer, dy.buffer, right.buffer, geometry); // dΣᵀ·Xc
    const both = add(left, right);
    const dx = scale(both, 1 / samples);
    for (const t of [left, right, both]) t.dispose();
    return [dx];
  });
}

/** W·xc per group, W = V diag(λ^-1/2) Vᵀ from the eigendecomposition of covariance + εI. */
function whiten(xc: Tensor, covariance: Tensor, opts: Pick<ZcaOptions, "eps" | "backward" | "iterations">): Tensor {
  const [groups, g] = covariance.shape;
  const epsIdentity = tensor(Float32Array.from({ length: g * g }, (_, k) => (k % (g + 1) === 0 ? opts.eps : 0)), [g, g], xc.backend);
  const { values, vectors } = eigh(add(covariance, epsIdentity), { backward: opts.backward, iterations: opts.iterations });
  const w = batchedMatmul(mul(vectors, reshape(rsqrt(values), [groups, 1, g])), vectors, { transB: true });
  return conv2d(xc, reshape(w, [groups * g, g, 1, 1]), null, { groups });
}
