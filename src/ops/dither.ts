/**
 * Dithered backprop (Wiedemann, Mehari, Kepp, Samek, "Dithered backprop: a sparse and
 * quantized backpropagation algorithm for more efficient deep neural network training",
 * arXiv 2004.04729): the gradient at a layer's output is quantised with non-subtractive
 * dither, Q(δ) = Δ·round((δ + ν)/Δ) with ν ~ U(−Δ/2, Δ/2) drawn afresh for every element,
 * before the layer's two backward products (input and weight gradient) use it. The forward
 * is untouched. Q is unbiased, E[Q(δ)] = δ, and with Δ of the order of δ's spread most
 * elements round to 0, which is the sparsity the paper reports (≈ 92 % on average).
 *
 * Written as Δ·floor(δ/Δ + u) with u ~ U[0, 1): the same quantiser (round(a + ν/Δ) =
 * floor(a + u) except on ties, which have probability 0), and its expectation is exactly
 * δ/Δ·Δ since E[floor(a + u)] = floor(a) + P(u ≥ 1 − frac(a)) = a. The noise comes from the
 * seeded stream on the tensor's device (`rand`), so a seeded run redraws the same dither.
 *
 * Δ per layer and per step from the gradient's own spread, by a stated rule: "std" (Δ =
 * factor·std(δ), the population standard deviation of the whole tensor) or "maxabs" (Δ =
 * factor·max|δ|). The paper's exact step rule could not be read here; these are the two
 * rules this implementation offers, and the docs say so.
 */
import { customGrad } from "../functional.ts";
import { ValueError } from "../errors.ts";
import { rand, type Tensor } from "../tensor.ts";
import { add, div, mul } from "./elementwise.ts";
import { amax, mean } from "./reduce.ts";
import { abs, clamp, floor } from "./unary.ts";
import { std } from "./variance.ts";
import { eq } from "./compare.ts";

/** How Δ follows the gradient's spread. */
export type DitherRule = "std" | "maxabs";

export interface DitherOptions {
  /** Δ = factor·std(δ) ("std") or factor·max|δ| ("maxabs"). */
  rule: DitherRule;
  factor: number;
  /**
   * Sees the fraction of the quantised gradient's elements that are exactly 0 (a one-element
   * device tensor, the caller's to dispose), once per backward pass.
   */
  onSparsity?: (zeroFraction: Tensor) => void;
}

/**
 * Below this Δ is raised to it: an all-zero gradient (Δ = 0) then quantises to zeros
 * instead of 0/0, and a constant one to itself within float32 rounding.
 */
const SMALLEST_STEP = 1e-30;

export function checkDitherOptions(where: string, opts: Pick<DitherOptions, "rule" | "factor">): void {
  if (opts.rule !== "std" && opts.rule !== "maxabs") {
    throw new ValueError(`${where}: the dither rule must be "std" or "maxabs", got ${JSON.stringify(opts.rule)}`);
  }
  if (!(typeof opts.factor === "number" && opts.factor > 0 && Number.isFinite(opts.factor))) {
    throw new ValueError(`${where}: the dither factor must be a finite number > 0, got ${String(opts.factor)}`);
  }
}

/** Δ for `g` under `rule` (a one-element tensor of `g`'s rank, for broadcasting). */
export function ditherStep(g: Tensor, rule: DitherRule, factor: number): Tensor {
  const spread = rule === "std" ? std(g, undefined, { correction: 0, keepdim: true }) : amaxAbs(g);
  const scaled = mul(spread, factor);
  const step = clamp(scaled, SMALLEST_STEP);
  spread.dispose();
  scaled.dispose();
  return step;
}

function amaxAbs(g: Tensor): Tensor {
  const magnitude = abs(g);
  const largest = amax(magnitude, undefined, true);
  magnitude.dispose();
  return largest;
}

/** Non-subtractive dithered quantisation of `g` with step `step` (a number or a broadcastable tensor). */
export function ditherQuantise(g: Tensor, step: Tensor | number): Tensor {
  const u = rand(g.shape, {}, g.backend);
  const ratio = div(g, step);
  const shifted = add(ratio, u);
  const levels = floor(shifted);
  const q = mul(levels, step);
  for (const t of [u, ratio, shifted, levels]) t.dispose();
  return q;
}

/**
 * The identity in the forward pass whose backward pass hands on the dithered quantisation of
 * the incoming gradient: put it on a layer's output, and the layer's backward products see
 * Q(δ) instead of δ.
 */
export function ditherGrad(x: Tensor, opts: DitherOptions): Tensor {
  checkDitherOptions("ditherGrad", opts);
  const op = customGrad({
    name: "ditherGrad",
    forward: (input) => ({ output: input.detach() }),
    backward: (dy) => {
      const step = ditherStep(dy, opts.rule, opts.factor);
      const q = ditherQuantise(dy, step);
      step.dispose();
      if (opts.onSparsity) {
        const zeros = eq(q, 0);
        opts.onSparsity(mean(zeros));
        zeros.dispose();
      }
      return [q];
    },
  });
  return op(x);
}
