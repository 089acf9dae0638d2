/**
 * Reductions to a scalar. They run on the device (a broadcast reduction), so a loss stays
 * on the GPU until someone reads it.
 */
import { record } from "../autograd.ts";
import { empty, Tensor, type Shape } from "../tensor.ts";
import { broadcast4 } from "./util.ts";

function sumAll(x: Tensor, scale: number): Tensor {
  const s = empty([], x.backend);
  x.backend.reduceBroadcast(x.buffer, s.buffer, broadcast4([x.size], [1], [1]));
  if (scale !== 1) x.backend.scale(s.buffer, s.buffer, scale);
  return s;
}

/** dx = dy·scale broadcast back over `shape` (the input's, which may be disposed by now). */
function spread(dy: Tensor, shape: Shape, scale: number): Tensor {
  const dx = empty(shape, dy.backend);
  dx.backend.fill(dx.buffer, scale);
  dx.backend.binary("mul", dx.buffer, dy.buffer, dx.buffer, broadcast4([dx.size], [dx.size], [1]));
  return dx;
}

export function sum(x: Tensor): Tensor {
  return record("sum", sumAll(x, 1), [x], [], (dy) => [spread(dy, x.shape, 1)]);
}

export function mean(x: Tensor): Tensor {
  return record("mean", sumAll(x, 1 / x.size), [x], [], (dy) => [spread(dy, x.shape, 1 / x.size)]);
}
