/**
 * Reductions to a scalar. They run on the device (a broadcast reduction), so a loss stays
 * on the GPU until someone reads it.
 */
import { record } from "../autograd.ts";
import { empty, Tensor } from "../tensor.ts";
import { broadcast4 } from "./util.ts";

function sumAll(x: Tensor, scale: number): Tensor {
  const s = empty([], x.backend);
  x.backend.reduceBroadcast(x.buffer, s.buffer, broadcast4([x.size], [1], [1]));
  if (scale !== 1) x.backend.scale(s.buffer, s.buffer, scale);
  return s;
}

/** dx = dy·scale broadcast back over x's shape. */
function spread(dy: Tensor, x: Tensor, scale: number): Tensor {
  const dx = empty(x.shape, x.backend);
  x.backend.fill(dx.buffer, scale);
  x.backend.binary("mul", dx.buffer, dy.buffer, dx.buffer, broadcast4([x.size], [x.size], [1]));
  return dx;
}

export function sum(x: Tensor): Tensor {
  return record("sum", sumAll(x, 1), [x], [], (dy) => [spread(dy, x, 1)]);
}

export function mean(x: Tensor): Tensor {
  return record("mean", sumAll(x, 1 / x.size), [x], [], (dy) => [spread(dy, x, 1 / x.size)]);
}
