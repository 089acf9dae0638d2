/**
 * "Noisy BatchNorm", the experiment with which Santurkar, Tsipras, Ilyas and Madry ("How does
 * batch normalization help optimization?", NeurIPS 2018, §2.1) separate BatchNorm's benefit
 * from the stability of the activations' distribution: after every BatchNorm (after γ and β),
 * in training, the activations are perturbed by noise whose mean and scale change at every
 * step, so the next layer sees a distribution that shifts far more than without BatchNorm,
 * and yet the network trains almost as well.
 *
 * At each forward pass, each layer draws μ ~ U(−0.5, 0.5) and σ ~ U(1, 1.25); then every
 * activation of every sample (each element of the [N, C, H, W] output: "each activation for
 * each sample" in the paper) gets its own m ~ U(μ − 0.1, μ + 0.1) and s ~ N(σ, 0.1), and
 * a ← s·a + m. The gradient flows through s·a as through any product. Evaluation mode adds no
 * noise. Every draw comes from the run's seeded stream, so a noisy run is as reproducible as
 * any other (and a probe that forks the stream at the step's state sees the step's noise).
 *
 * It is installed as a forward hook on each BatchNorm2d, so it works on any model that has
 * them; a hooked BatchNorm leaves the fused BatchNorm→ReLU path (models/common.ts bnRelu),
 * which gives the same numbers.
 */
import { ValueError } from "../errors.ts";
import { takeDraws, uniform } from "../random.ts";
import { add, mul } from "../ops/elementwise.ts";
import { rand, randn, type Tensor } from "../tensor.ts";
import type { Module } from "./module.ts";
import { BatchNorm2d } from "./layers.ts";

/** The noise's distribution (the paper's values are the defaults). */
export interface BatchNormNoiseOptions {
  /** Range of the per-step mean μ (default [−0.5, 0.5]). */
  meanRange?: readonly [number, number];
  /** Range of the per-step scale σ (default [1, 1.25]). */
  scaleRange?: readonly [number, number];
  /** Half-width of the per-activation shift around μ (default 0.1). */
  shiftSpread?: number;
  /** Standard deviation of the per-activation scale around σ (default 0.1). */
  scaleStd?: number;
}

/** The noise for one output: s·a + m with fresh μ, σ, m and s; `output` is consumed (the tape keeps what it needs). */
function perturb(output: Tensor, opts: Required<BatchNormNoiseOptions>): Tensor {
  const { key, counter } = takeDraws(2);
  const mu = opts.meanRange[0] + (opts.meanRange[1] - opts.meanRange[0]) * uniform(key, counter);
  const sigma = opts.scaleRange[0] + (opts.scaleRange[1] - opts.scaleRange[0]) * uniform(key, counter + 1);
  const shift = rand(output.shape, { low: mu - opts.shiftSpread, high: mu + opts.shiftSpread }, output.backend);
  const scale = randn(output.shape, { mean: sigma, std: opts.scaleStd }, output.backend);
  const scaled = mul(output, scale);
  const noisy = add(scaled, shift);
  for (const t of [output, shift, scale, scaled]) t.dispose();
  return noisy;
}

/**
 * Add the noise after every BatchNorm2d of `model` (in training mode). Returns a handle whose
 * `remove()` takes it away again. A model without BatchNorm is a ValueError: the experiment
 * would silently be a plain run.
 */
export function addBatchNormNoise(model: Module, opts: BatchNormNoiseOptions = {}): { remove(): void } {
  const settings: Required<BatchNormNoiseOptions> = {
    meanRange: opts.meanRange ?? [-0.5, 0.5], scaleRange: opts.scaleRange ?? [1, 1.25],
    shiftSpread: opts.shiftSpread ?? 0.1, scaleStd: opts.scaleStd ?? 0.1,
  };
  const norms = [...model.namedModules()].map(([, m]) => m).filter((m) => m instanceof BatchNorm2d);
  if (norms.length === 0) throw new ValueError("noisy BatchNorm: the model has no BatchNorm layers to add noise after");
  const handles = norms.map((bn) => bn.registerForwardHook((module, _input, output) => module.training ? perturb(output, settings) : undefined));
  return { remove: () => handles.forEach((h) => h.remove()) };
}
