/**
 * Bayesian (Kalman) weight initialisation after Murru & Rossini, "A Bayesian approach for
 * initialization of weights in backpropagation neural net with application to character
 * recognition" (Neurocomputing 2016; arXiv 2004.01875). Only the paper's abstract could be
 * read here: weights are treated as measurements modelled by mutually dependent normal random
 * variables and fused by a customised Kalman filter in Bayesian terms. What follows is this
 * implementation's stated form of that idea, not the paper's equations.
 *
 * For one weight tensor w (n elements) and M random draws z₁ … z_M of the layer's usual
 * initial law (each a full tensor from the seeded stream), every element of w is an unknown
 * with prior N(0, σ²), σ² the law's variance, and the draws are M measurements of it,
 * z = 1·w + e, whose errors are mutually dependent normal, e ~ N(0, R), with R the M × M
 * covariance of the draws estimated over the tensor's n elements. The Kalman (Bayes) update of
 * the prior with all M measurements at once gives, for every element alike,
 *
 *     S = σ²·11ᵀ + R,   K = σ²·1ᵀS⁻¹ (the gain, 1 × M),   w = K·z,   P = σ²·(1 − K·1)
 *
 * (P the posterior variance). The initial weights are the posterior mean. For independent
 * draws R ≈ σ²I and K ≈ 1/(M + 1) each, so w is near the draws' average shrunk by M/(M + 1)
 * and its spread is about σ·√M/(M + 1): the fusion shrinks the weights by roughly √M, which
 * docs/variants.md's experiment separates from the fusion itself with a matched-scale control.
 * The update runs on the host in float64 (once per tensor, at initialisation), for a tensor on
 * any backend: the draws are made on the CPU backend, where the host can read them, and the
 * fused weights are written into the tensor's own device. The stream is counter-based, so those
 * draws take the same counters (and leave the stream where) a draw on the tensor's device would,
 * and a model initialised on the GPU gets the CPU's weights bit for bit.
 */
import { ValueError } from "../errors.ts";
import { empty, tensor, type Tensor } from "../tensor.ts";
import { getBackend } from "../backend/registry.ts";
import { fans } from "./init.ts";
import type { Module } from "./module.ts";
import { Conv2d, Linear } from "./layers.ts";

export interface BayesianInitOptions {
  /** Random draws fused into each tensor (default 10). */
  draws?: number;
  /**
   * The draws' law: "uniform" U(±1/√fan_in), PyTorch's default for Linear and Conv2d weights,
   * or "kaiming" N(0, 2/fan_out), torchvision's for ReLU convnets (default "uniform").
   */
  law?: "uniform" | "kaiming";
}

/** Fill `t` with the posterior mean of its prior fused with `draws` random draws (see the file's header). */
export function bayesian_(t: Tensor, opts: BayesianInitOptions = {}): Tensor {
  const m = opts.draws ?? 10;
  const law = opts.law ?? "uniform";
  if (!Number.isInteger(m) || m < 1) throw new ValueError(`bayesian_: draws must be an integer ≥ 1, got ${m}`);
  if (law !== "uniform" && law !== "kaiming") throw new ValueError(`bayesian_: law must be "uniform" or "kaiming", got ${JSON.stringify(law)}`);
  const { fanIn, fanOut } = fans(t);
  const bound = 1 / Math.sqrt(fanIn);
  const variance = law === "uniform" ? bound * bound / 3 : 2 / fanOut;
  const host = getBackend("cpu");
  const draws: Float32Array[] = [];
  for (let k = 0; k < m; k++) {
    const z = empty(t.shape, host);
    if (law === "uniform") z.uniform_(-bound, bound);
    else z.normal_(0, Math.sqrt(variance));
    draws.push(z.dataSync().slice());
    z.dispose();
  }
  const gain = kalmanGain(draws, variance);
  const fused = new Float32Array(t.size);
  for (let e = 0; e < t.size; e++) {
    let s = 0;
    for (let k = 0; k < m; k++) s += gain[k] * draws[k][e];
    fused[e] = s;
  }
  return t.copy_(tensor(fused, t.shape, host));
}

/** Every Linear and Conv2d weight of `model` by `bayesian_` (biases keep their initialisation). */
export function bayesianInit(model: Module, opts: BayesianInitOptions = {}): void {
  for (const [, layer] of model.namedModules()) {
    if (layer instanceof Linear || layer instanceof Conv2d) bayesian_(layer.weight, opts);
  }
}

/** K = σ²·1ᵀ(σ²·11ᵀ + R)⁻¹ with R the draws' covariance over their elements, in float64. */
function kalmanGain(draws: readonly Float32Array[], variance: number): Float64Array {
  const m = draws.length, n = draws[0].length;
  const means = draws.map((z) => z.reduce((a, b) => a + b, 0) / n);
  const s = new Float64Array(m * m);
  for (let k = 0; k < m; k++) {
    for (let l = 0; l <= k; l++) {
      let c = 0;
      for (let e = 0; e < n; e++) c += (draws[k][e] - means[k]) * (draws[l][e] - means[l]);
      s[k * m + l] = s[l * m + k] = c / n + variance;
    }
  }
  // S is symmetric positive definite (σ² > 0 on a covariance): K = σ²·S⁻¹1 by Cholesky.
  const chol = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let v = s[i * m + j];
      for (let k = 0; k < j; k++) v -= chol[i * m + k] * chol[j * m + k];
      chol[i * m + j] = i === j ? Math.sqrt(v) : v / chol[j * m + j];
    }
  }
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let v = 1;
    for (let k = 0; k < i; k++) v -= chol[i * m + k] * y[k];
    y[i] = v / chol[i * m + i];
  }
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let v = y[i];
    for (let k = i + 1; k < m; k++) v -= chol[k * m + i] * x[k];
    x[i] = v / chol[i * m + i];
  }
  return x.map((v) => variance * v);
}
