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
 * layer): what AGC clips.
 */
export function parametersExceptClassifier(model: Module): Tensor[] {
  const layers = [...model.namedModules()].filter(([, m]) => m instanceof Linear || m instanceof Conv2d);
  if (layers.length === 0) return model.parameters();
  const classifier = new Set(layers[layers.length - 1][1].parameters());
  return model.parameters().filter((p) => !classifier.has(p));
}
