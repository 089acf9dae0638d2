/**
 * Shape ops. Tensors are contiguous, so a reshape is a new handle on the same storage (no
 * copy), and its gradient is the output gradient viewed back in the input's shape.
 */
import { record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { sizeOf, Tensor, Storage, type Shape } from "../tensor.ts";
import { fmt } from "./util.ts";

function view(t: Tensor, shape: Shape): Tensor {
  return new Tensor((t.storage as Storage).retain(), shape);
}

/** Reshape (one dim may be −1, inferred). Shares storage with x. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const inferred = shape.indexOf(-1);
  let resolved = [...shape];
  if (inferred >= 0) {
    const known = sizeOf(shape.filter((_, i) => i !== inferred));
    if (known === 0 || x.size % known !== 0) {
      throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} into ${fmt(shape)}`);
    }
    resolved[inferred] = x.size / known;
  }
  if (sizeOf(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)}`);
  }
  return record("reshape", view(x, resolved), [x], [], (dy) => [view(dy, x.shape)]);
}

/** Keep dim 0, flatten the rest: [N, ...] → [N, prod(rest)]. */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0], -1]);
}
