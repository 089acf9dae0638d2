/**
 * Variance and standard deviation over chosen axes, as torch.var and torch.std:
 * Σ(x − mean)² / max(0, N − correction), with correction 1 (Bessel's, unbiased) unless told.
 * The value is composed of the generic ops off the tape; the gradient is PyTorch's rule,
 * 2·dy·(x − mean) / (N − correction), and std's passes dy / (2·std) into it with 0 where the
 * std is 0 (a constant slice has a zero gradient, not the NaN that differentiating √ gives).
 * Rules stated directly also keep PyTorch's values where x holds ±Inf (a composed gradient
 * would add the NaN mean of the rest).
 */
import { noGrad, record } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { type Axes, normaliseAxes, reducedCount, reducedShape } from "./axes.ts";
import { eq, where } from "./compare.ts";
import { div, mul, sub } from "./elementwise.ts";
import { expandTo, mean, sum } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { sqrt, square } from "./unary.ts";

export interface VarianceOptions {
  /** Subtracted from the count in the divisor: 1 (default) unbiased, 0 the population variance. */
  correction?: number;
  keepdim?: boolean;
}

function disposeAll(...tensors: Tensor[]): void {
  for (const t of tensors) t.dispose();
}

/** x − centre, the centre (reduced over `axes`, kept as size 1) repeated back over them. */
function deviations(x: Tensor, centre: Tensor, axes: readonly number[]): Tensor {
  const repeated = expandTo(centre, x.shape, axes);
  const out = sub(x, repeated);
  repeated.dispose();
  return out;
}

function moments(op: "var" | "std", x: Tensor, axes: Axes, opts: VarianceOptions): Tensor {
  const correction = opts.correction ?? 1;
  if (!Number.isFinite(correction)) throw new ValueError(`${op}: correction must be a finite number, got ${correction}`);
  const reduced = normaliseAxes(op, x.shape, axes);
  const dof = reducedCount(x.shape, reduced) - correction;
  const keepShape = reducedShape(x.shape, reduced, true);
  const [value, centre] = noGrad(() => {
    const centre = mean(x, reduced, true);
    const deviation = deviations(x, centre, reduced);
    const squared = square(deviation);
    const total = sum(squared, reduced, opts.keepdim ?? false);
    const v = div(total, Math.max(0, dof));
    disposeAll(deviation, squared, total);
    if (op === "var") return [v, centre];
    const s = sqrt(v);
    v.dispose();
    return [s, centre];
  });
  const out = record(op, value, [x], [x, centre, value], (dy, [sx, sc, sv]) => {
    const g = reshape(dy, keepShape);
    let upstream = g;
    if (op === "std") {
      // dy / (2·std), 0 where std = 0
      const s = reshape(sv, keepShape);
      const twice = mul(s, 2);
      const ratio = div(g, twice);
      const zero = eq(s, 0);
      upstream = where(zero, 0, ratio);
      disposeAll(s, twice, ratio, zero);
    }
    // (2 / dof)·dy·(x − mean)
    const scaled = mul(upstream, 2 / dof);
    const repeated = expandTo(scaled, x.shape, reduced);
    const deviation = deviations(sx, sc, reduced);
    const dx = mul(repeated, deviation);
    disposeAll(g, scaled, repeated, deviation, ...(upstream === g ? [] : [upstream]));
    return [dx];
  });
  centre.dispose();
  return out;
}

/** The variance over `axes` (every axis when omitted); exported as `var` too, like torch.var. */
export function variance(x: Tensor, axes?: Axes, opts: VarianceOptions = {}): Tensor {
  return moments("var", x, axes, opts);
}

/** The standard deviation over `axes` (every axis when omitted): √var. */
export function std(x: Tensor, axes?: Axes, opts: VarianceOptions = {}): Tensor {
  return moments("std", x, axes, opts);
}
