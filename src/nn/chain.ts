/**
 * Running a list of steps (modules or ops) in order while freeing each intermediate as soon as
 * the next step has consumed it: what Sequential, the model zoo and every block's forward do.
 */
import type { Tensor } from "../tensor.ts";
import { reshape } from "../ops/shape.ts";
import type { Module } from "./module.ts";

/** One stage of a forward pass: consumes a tensor, returns a new one. */
export type Step = (t: Tensor) => Tensor;

/**
 * A step that calls `m.forward` at run time (not a bound copy), so forward hooks installed
 * on `m` after the model was built still run.
 */
export function stepOf(m: Module): Step {
  return (t) => m.forward(t);
}

/**
 * Run `steps` in order, disposing each intermediate once the next step has consumed it (the
 * autograd graph keeps what backward needs). `x` belongs to the caller and is never
 * disposed; with no steps, a new handle on `x` is returned so the result is always ours.
 */
export function chain(x: Tensor, steps: readonly Step[]): Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x) h.dispose();
    h = next;
  }
  return h === x ? reshape(x, x.shape) : h;
}
