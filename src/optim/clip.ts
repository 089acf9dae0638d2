/**
 * Gradient clipping as steps a user runs between backward() and the optimiser's step, with
 * PyTorch's semantics (torch.nn.utils.clip_grad_norm_ / clip_grad_value_):
 *   by global norm: total = ‖(‖g₁‖_p, …, ‖g_n‖_p)‖_p over every parameter with a gradient;
 *   every gradient is multiplied by min(c/(total + 1e-6), 1); the total (before clipping)
 *   is returned as a 0-d tensor, so reading it is the caller's choice (a device read);
 *   by value: every element clamped to [−c, c].
 * Gradients are changed in place (the same tensors), on any backend.
 */
import { ValueError } from "../errors.ts";
import { noGrad } from "../autograd.ts";
import { full, type Tensor, tidy } from "../tensor.ts";
import { clamp } from "../ops/unary.ts";
import { div } from "../ops/elementwise.ts";
import "../ops/methods.ts";

/** ‖(‖t₁‖_p, …, ‖t_n‖_p)‖_p for p = 1, 2 or Infinity, as a 0-d tensor (tensors on one backend). */
export function globalNorm(tensors: readonly Tensor[], p = 2): Tensor {
  if (tensors.length === 0) throw new ValueError("globalNorm: no tensors");
  return noGrad(() => tidy(() => {
    const norms = tensors.map((t) => t.norm(p));
    if (p === Infinity) return norms.reduce((a, b) => a.maximum(b));
    if (p === 1) return norms.reduce((a, b) => a.add(b));
    return norms.map((n) => n.square()).reduce((a, b) => a.add(b)).sqrt();
  }));
}

function gradsOf(params: Iterable<Tensor>): Tensor[] {
  return [...params].map((p) => p.grad).filter((g): g is Tensor => g !== null);
}

/**
 * Scale the gradients of `params` so their global p-norm is at most maxNorm
 * (clip_grad_norm_); returns the norm before clipping (0 when no parameter has a gradient).
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, normType = 2): Tensor {
  if (!(maxNorm >= 0) || !Number.isFinite(maxNorm)) throw new ValueError(`clipGradNorm: maxNorm must be a finite number ≥ 0, got ${maxNorm}`);
  const list = [...params];
  const grads = gradsOf(list);
  if (grads.length === 0) return full([], 0, list[0]?.backend);
  return noGrad(() => tidy(() => {
    const total = globalNorm(grads, normType);
    const coefficient = div(maxNorm, total.add(1e-6)).minimum(1);
    for (const g of grads) tidy(() => g.copy_(g.mul(coefficient)));
    return total;
  }));
}

/** Clamp every gradient element of `params` to [−clipValue, clipValue] (clip_grad_value_). */
export function clipGradValue(params: Iterable<Tensor>, clipValue: number): void {
  if (!(clipValue >= 0) || !Number.isFinite(clipValue)) throw new ValueError(`clipGradValue: clipValue must be a finite number ≥ 0, got ${clipValue}`);
  noGrad(() => {
    for (const g of gradsOf(params)) tidy(() => g.copy_(clamp(g, -clipValue, clipValue)));
  });
}
