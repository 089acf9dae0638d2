/**
 * Scalar operands: a number wherever an op takes a tensor operand (`mul(x, 2)`,
 * `maximum(x, 0)`, `where(mask, x, 0)`), as in PyTorch. The number becomes a 0-d tensor on
 * the backend of the op's tensor operands, broadcast like any other operand and never requiring
 * a gradient, and is freed once the op has run (the tape keeps what a backward rule saved).
 */
import { ValueError } from "../errors.ts";
import { full, Tensor } from "../tensor.ts";

export type Operand = Tensor | number;

/** Run `fn` on the operands as tensors (numbers as 0-d tensors, freed afterwards). */
export function withOperands<T>(op: string, operands: readonly Operand[], fn: (tensors: Tensor[]) => T): T {
  const like = operands.find((o): o is Tensor => o instanceof Tensor);
  if (!like) throw new ValueError(`${op}: needs a tensor among its operands, got only numbers (${operands.join(", ")})`);
  const made: Tensor[] = [];
  const tensors = operands.map((o) => {
    if (o instanceof Tensor) return o;
    if (typeof o !== "number") throw new ValueError(`${op}: an operand must be a tensor or a number, got ${typeof o}`);
    const t = full([], o, like.backend);
    made.push(t);
    return t;
  });
  try {
    return fn(tensors);
  } finally {
    for (const t of made) t.dispose();
  }
}
