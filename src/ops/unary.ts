/**
 * The unary ops of the generic tier: exp, log, sqrt, rsqrt, abs, sign, neg, square, pow (a
 * scalar exponent), clamp, floor, round (half to even) and tanh. Each is one call of the
 * backend's unary kernel, and its gradient one call of unaryBackward, which implements
 * PyTorch's derivative formulas and reads x or y as UNARY_GRAD_READS says, so only that one
 * is kept for the backward pass. Adding a unary op costs one case per backend and a line here.
 *
 * sign, floor and round have PyTorch's zero gradient. floor and round also take
 * `{ straightThrough: true }`: the gradient then passes through unchanged, as if the op were
 * the identity (the straight-through estimator of Bengio, Léonard & Courville 2013, used to
 * train through quantisation): a backward rule that deliberately disagrees with the forward.
 */
import { UNARY_GRAD_READS, type UnaryOp, type UnaryParams } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";

/** floor and round: PyTorch's zero gradient, or the straight-through estimator. */
export interface QuantiseOptions {
  straightThrough?: boolean;
}

function unaryOp(op: UnaryOp, x: Tensor, params: UnaryParams = {}, straightThrough = false): Tensor {
  const backend = x.backend;
  const y = empty(x.shape, backend);
  backend.unary(op, x.buffer, y.buffer, params);
  if (straightThrough) return record(op, y, [x], [], (dy) => [dy.detach()]);
  const reads = UNARY_GRAD_READS[op];
  return record(op, y, [x], reads === "x" ? [x] : reads === "y" ? [y] : [], (dy, [kept]) => {
    const dx = empty(x.shape, backend);
    // the kernel reads only the tensor it needs; the other operand slot gets the same buffer
    const source = (kept ?? dy).buffer;
    backend.unaryBackward(op, source, source, dy.buffer, dx.buffer, params);
    return [dx];
  });
}

/** An op of the family that takes no parameter. */
function plain(op: UnaryOp): (x: Tensor) => Tensor {
  return (x) => unaryOp(op, x);
}

export const exp = plain("exp");
/** The natural logarithm. */
export const log = plain("log");
export const sqrt = plain("sqrt");
/** 1/√x */
export const rsqrt = plain("rsqrt");
export const abs = plain("abs");
/** −1, 0 or 1 (0 for NaN, as in PyTorch); zero gradient. */
export const sign = plain("sign");
/** −x */
export const neg = plain("neg");
/** x² */
export const square = plain("square");
export const tanh = plain("tanh");

/** x^exponent for a scalar exponent (PyTorch's fast paths for 0, ±½, 1, 2, 3, −1, −2). */
export function pow(x: Tensor, exponent: number): Tensor {
  if (typeof exponent !== "number" || Number.isNaN(exponent)) {
    throw new ValueError(`pow: the exponent must be a number, got ${String(exponent)}`);
  }
  return unaryOp("pow", x, { exponent });
}

/** min(max(x, min), max); either bound may be omitted (null or undefined), not both. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  if ((min ?? null) === null && (max ?? null) === null) throw new ValueError("clamp: give min, max or both");
  for (const [name, v] of [["min", min], ["max", max]] as const) {
    if (v !== null && v !== undefined && typeof v !== "number") throw new ValueError(`clamp: ${name} must be a number, got ${typeof v}`);
  }
  return unaryOp("clamp", x, { min: min ?? undefined, max: max ?? undefined });
}

/** Round down. Zero gradient, or the identity's with `straightThrough`. */
export function floor(x: Tensor, opts: QuantiseOptions = {}): Tensor {
  return unaryOp("floor", x, {}, opts.straightThrough ?? false);
}

/** Round to the nearest integer, halves to even (torch.round). Zero gradient, or the identity's with `straightThrough`. */
export function round(x: Tensor, opts: QuantiseOptions = {}): Tensor {
  return unaryOp("round", x, {}, opts.straightThrough ?? false);
}
