/**
 * Inverted dropout: in training each element is zeroed with probability p and the rest
 * scaled by 1/(1−p), from the global seeded stream (so runs repeat exactly); the saved
 * mask is also the backward multiplier. Identity outside training.
 */
import { record } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import { takeDraws } from "../random.ts";
import { empty, Tensor } from "../tensor.ts";
import { reshape } from "./shape.ts";
import { broadcast4 } from "./util.ts";

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!(p >= 0 && p < 1)) throw new ValueError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return reshape(x, x.shape);
  const backend = x.backend;
  const y = empty(x.shape, backend);
  const mask = empty(x.shape, backend);
  backend.dropoutForward(x.buffer, y.buffer, mask.buffer, p, takeDraws(x.size));
  const out = record("dropout", y, [x], [mask], (dy, [m]) => {
    const dx = empty(x.shape, backend);
    backend.binary("mul", dy.buffer, m.buffer, dx.buffer, broadcast4([x.size], [x.size], [x.size]));
    return [dx];
  });
  mask.dispose();
  return out;
}
