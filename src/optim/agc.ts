/**
 * Adaptive gradient clipping (Brock, De, Smith & Simonyan, "High-Performance Large-Scale
 * Image Recognition Without Normalization", arXiv 2102.06171), as timm's adaptive_clip_grad
 * computes it: per unit i (a row of a linear weight, an output filter of a convolution: every
 * axis but the first; a vector or scalar parameter is one unit),
 *   bound_i = λ·max(‖W_i‖, ε),
 *   G_i ← G_i                               where ‖G_i‖ < bound_i,
 *         G_i·bound_i / max(‖G_i‖, 1e-6)     elsewhere.
 * The paper leaves the final classifier layer unclipped: pass the parameters without it
 * (`parametersExceptClassifier`). A step a user runs between backward() and the optimiser.
 *
 * A scalar gain initialised at zero (SkipInit's `skip_gain`, which starts each residual branch
 * off) has the bound λ·ε: with λ = 0.01 a gradient of at most 1e-5 per step, so in a schedule of
 * thousands of steps (not the paper's 10⁵) the branches barely open. `exclude` leaves such
 * parameters unclipped by name, as other AGC implementations' lists of skipped layers do.
 */
import { ValueError } from "../errors.ts";
import { noGrad } from "../autograd.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { where } from "../ops/compare.ts";
import "../ops/methods.ts";
import type { Module } from "../nn/module.ts";
import { Conv2d, Linear } from "../nn/layers.ts";

/** ‖x_i‖₂ per unit: over every axis but the first (kept, to broadcast), or the whole of a vector. */
function unitNorms(x: Tensor): Tensor {
  return x.rank <= 1 ? x.norm() : x.norm(2, Array.from({ length: x.rank - 1 }, (_, k) => k + 1), true);
}

/** Clip the gradients of `params` unit-wise at λ times their weights' norms (ε = 1e-3 as the paper). */
export function adaptiveClipGrad(params: Iterable<Tensor>, clipFactor: number, eps = 1e-3): void {
  if (!(clipFactor > 0) || !Number.isFinite(clipFactor)) throw new ValueError(`adaptiveClipGrad: clipFactor must be a finite number > 0, got ${clipFactor}`);
  if (!(eps >= 0)) throw new ValueError(`adaptiveClipGrad: eps must be ≥ 0, got ${eps}`);
  noGrad(() => {
    for (const p of params) {
      const g = p.grad;
      if (!g) continue;
      tidy(() => {
        const bound = unitNorms(p).clamp(eps).mul(clipFactor);
        const gradNorm = unitNorms(g);
        const clipped = g.mul(bound.div(gradNorm.clamp(1e-6)));
        g.copy_(where(gradNorm.lt(bound), g, clipped));
      });
    }
  });
}

/**
 * Every parameter of `model` except those of its classifier, taken to be the last linear or
 * convolution layer in module order (the ResNets' `fc`, VGG's `classifier.3`, the MLP's last
 * layer), and except those named in `exclude` (a full name, `layer1.0.skip_gain`, or its last
 * part, `skip_gain`, for every such parameter): what AGC clips. A name in `exclude` that matches
 * no parameter is a ValueError naming it.
 */
export function parametersExceptClassifier(model: Module, exclude: readonly string[] = []): Tensor[] {
  const layers = [...model.namedModules()].filter(([, m]) => m instanceof Linear || m instanceof Conv2d);
  const classifier = new Set(layers.length === 0 ? [] : layers[layers.length - 1][1].parameters());
  const named = [...model.namedParameters()];
  const excluded = (name: string, pattern: string) => name === pattern || name.endsWith(`.${pattern}`);
  for (const pattern of exclude) {
    if (!named.some(([name]) => excluded(name, pattern))) {
      throw new ValueError(`AGC exclude: "${pattern}" names no parameter of the model (its names are like ${named.slice(0, 3).map(([n]) => n).join(", ")})`);
    }
  }
  return named.filter(([name, p]) => !classifier.has(p) && !exclude.some((pattern) => excluded(name, pattern))).map(([, p]) => p);
}
