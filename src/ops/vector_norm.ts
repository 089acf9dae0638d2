/**
 * Vector norms over chosen axes, as torch.linalg.vector_norm: p = 1 (Σ|x|), 2 (√Σx²) and
 * Infinity (max |x|). The 1-norm is abs and sum composed, and its gradient sgn(x)·dy is
 * theirs. The 2- and ∞-norms carry PyTorch's own rules: x·dy/‖x‖ with 0 where the norm is 0
 * (not the NaN that differentiating √ would give at a zero vector), and sgn(x)·dy/k on the k
 * entries that attain the maximum or are NaN, 0 elsewhere.
 */
import { noGrad, record } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { type Axes, normaliseAxes, reducedShape } from "./axes.ts";
import { eq, maximum, ne, where } from "./compare.ts";
import { div, mul } from "./elementwise.ts";
import { amax, expandTo, sum } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { abs, sign, sqrt, square } from "./unary.ts";

function disposeAll(...tensors: Tensor[]): void {
  for (const t of tensors) t.dispose();
}

/** ‖x‖_p over `axes` (every axis when omitted) for p = 1, 2 or Infinity. */
export function norm(x: Tensor, p = 2, axes?: Axes, keepdim = false): Tensor {
  const reduced = normaliseAxes("norm", x.shape, axes);
  if (p === 1) {
    const magnitudes = abs(x);
    const out = sum(magnitudes, reduced, keepdim);
    magnitudes.dispose();
    return out;
  }
  if (p !== 2 && p !== Infinity) throw new ValueError(`norm: p must be 1, 2 or Infinity, got ${p}`);
  const keepShape = reducedShape(x.shape, reduced, true);
  const value = noGrad(() => {
    const terms = p === 2 ? square(x) : abs(x);
    const total = p === 2 ? sum(terms, reduced, keepdim) : amax(terms, reduced, keepdim);
    const out = p === 2 ? sqrt(total) : total;
    disposeAll(terms, ...(out === total ? [] : [total]));
    return out;
  });
  return record("norm", value, [x], [x, value], (dy, [sx, sn]) => {
    const n = reshape(sn, keepShape);
    const g = reshape(dy, keepShape);
    if (p === 2) {
      // x · (dy / ‖x‖), with 0 where ‖x‖ = 0
      const zero = eq(n, 0);
      const ratio = div(g, n);
      const scale = where(zero, 0, ratio);
      const repeated = expandTo(scale, x.shape, reduced);
      const dx = mul(sx, repeated);
      disposeAll(n, g, zero, ratio, scale, repeated);
      return [dx];
    }
    // sgn(x) · ((dy / k) · mask), mask = (|x| = ‖x‖∞) or |x| NaN, k = Σ mask
    const magnitudes = abs(sx);
    const largest = expandTo(n, x.shape, reduced);
    const attains = eq(magnitudes, largest);
    const isNan = ne(magnitudes, magnitudes);
    const mask = maximum(attains, isNan);
    const k = sum(mask, reduced, true);
    const share = div(g, k);
    const repeated = expandTo(share, x.shape, reduced);
    const masked = mul(repeated, mask);
    const signs = sign(sx);
    const dx = mul(signs, masked);
    disposeAll(n, g, magnitudes, largest, attains, isNan, mask, k, share, repeated, masked, signs);
    return [dx];
  });
}
