/**
 * Comparisons and selection, with broadcasting and numbers for operands: maximum/minimum
 * (NaN propagates), the comparisons eq, ne, lt, le, gt, ge as float masks of 1 and 0 (no
 * gradient; a NaN operand compares false, but for ne), and where(mask, a, b), which takes a
 * where the mask is not 0. Gradients are PyTorch's: where sends dy to the side it selected
 * (0 to the other, even where dy is not finite); maximum gives dy to the larger operand and
 * half of it to each on a tie, minimum likewise to the smaller.
 */
import type { BinaryOp } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { empty, Tensor } from "../tensor.ts";
import { binaryForward, mul, sumToShape } from "./elementwise.ts";
import { type Operand, withOperands } from "./scalar.ts";
import { broadcastSelect, broadcastShape, sameBackend } from "./util.ts";

type Comparison = Extract<BinaryOp, "eq" | "ne" | "lt" | "le" | "gt" | "ge">;

/** A comparison as an op: a float mask, 1 where it holds and 0 elsewhere, with no gradient. */
function comparison(op: Comparison): (a: Operand, b: Operand) => Tensor {
  return (a, b) => withOperands(op, [a, b], ([x, y]) => binaryForward(op, x, y));
}

/** a = b, a ≠ b (true where either is NaN), a < b, a ≤ b, a > b, a ≥ b: masks of 1 and 0. */
export const [eq, ne, lt, le, gt, ge] = (["eq", "ne", "lt", "le", "gt", "ge"] as const).map(comparison);

/** cond ≠ 0 ? a : b, broadcast to the shape of all three, off the tape. */
function select(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  sameBackend("where", cond, a, b);
  const shape = broadcastShape("where", cond.shape, a.shape, b.shape);
  const y = empty(shape, a.backend);
  a.backend.where(cond.buffer, a.buffer, b.buffer, y.buffer, broadcastSelect(shape, cond.shape, a.shape, b.shape));
  return y;
}

/** A gradient at the output's shape summed back to `target`'s (consumes `g`). */
function summedTo(g: Tensor, target: Tensor): Tensor {
  const out = sumToShape(g, target.shape);
  g.dispose();
  return out;
}

/** a where mask ≠ 0 (NaN counts as true), else b; a and b may be numbers. */
export function where(mask: Tensor, a: Operand, b: Operand): Tensor {
  return withOperands("where", [mask, a, b], ([m, x, y]) =>
    record("where", select(m, x, y), [x, y], [m], (dy, [sm]) => withOperands("where", [dy, 0], ([, zero]) => [
      x.requiresGrad ? summedTo(select(sm, dy, zero), x) : null,
      y.requiresGrad ? summedTo(select(sm, zero, dy), y) : null,
    ])));
}

/**
 * The gradient of maximum (or minimum) for one operand: 0 where it `loses`, dy/2 on a tie,
 * else dy (PyTorch: where(a == b, dy/2, dy).masked_fill_(loses, 0)), summed back to its shape.
 */
function extremeGrad(dy: Tensor, a: Tensor, b: Tensor, loses: Comparison, target: Tensor): Tensor {
  return withOperands("maximum", [dy, 0.5, 0], ([, half, zero]) => {
    const tie = binaryForward("eq", a, b);
    const halved = mul(dy, half);
    const shared = select(tie, halved, dy);
    const lost = binaryForward(loses, a, b);
    const g = summedTo(select(lost, zero, shared), target);
    for (const t of [tie, halved, shared, lost]) t.dispose();
    return g;
  });
}

function extreme(op: "maximum" | "minimum", a: Operand, b: Operand): Tensor {
  return withOperands(op, [a, b], ([x, y]) =>
    record(op, binaryForward(op, x, y), [x, y], [x, y], (dy, [sx, sy]) => [
      x.requiresGrad ? extremeGrad(dy, sx, sy, op === "maximum" ? "lt" : "gt", x) : null,
      y.requiresGrad ? extremeGrad(dy, sx, sy, op === "maximum" ? "gt" : "lt", y) : null,
    ]));
}

/** The larger of a and b elementwise (NaN if either is); a tie splits the gradient in half. */
export function maximum(a: Operand, b: Operand): Tensor {
  return extreme("maximum", a, b);
}

/** The smaller of a and b elementwise (NaN if either is); a tie splits the gradient in half. */
export function minimum(a: Operand, b: Operand): Tensor {
  return extreme("minimum", a, b);
}
