/**
 * Reductions, on the device (a loss stays on the GPU until someone reads it). sum and mean
 * over every element are one broadcast reduction (the scalar a loss or a test reduces to; its
 * bits are those of the first version); over chosen axes, with keepdim, they run as passes of
 * the backend's reduceAxis kernel (axes.ts), and their gradient is the output gradient
 * expanded back over the reduced axes. amax/amin give the values over any axes, with the
 * gradient split evenly among ties (torch.amax, so a NaN makes its whole slice's gradient
 * NaN); max/min over one axis also give the index, as torch.max(x, dim), and the gradient goes
 * to that index alone. max(x) and min(x) without an axis are amax/amin over every axis.
 */
import type { AxisView } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, full, Tensor, type Shape } from "../tensor.ts";
import { type Axes, axisPasses, normaliseAxes, reducedCount, reducedShape } from "./axes.ts";
import { binaryForward, div } from "./elementwise.ts";
import { reshape } from "./shape.ts";
import { broadcast4, fmt } from "./util.ts";

function sumAll(x: Tensor, scale: number, shape: Shape): Tensor {
  const s = empty(shape, x.backend);
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

/**
 * x reduced over `axes` by passes of reduceAxis, into a new tensor of shape `outShape` (x's
 * shape without the axes, or with them at 1). A sum's last pass divides by `divisor`.
 */
function reducePasses(x: Tensor, axes: readonly number[], op: "sum" | "max" | "min", outShape: Shape, divisor = 1): Tensor {
  const backend = x.backend;
  const passes = axisPasses(x.shape, axes);
  let current = x;
  passes.forEach((view, k) => {
    const last = k === passes.length - 1;
    const out = last ? empty(outShape, backend) : empty([view.outer, view.inner], backend);
    backend.reduceAxis(current.buffer, out.buffer, view,
      op === "sum" ? { op, divisor: last ? divisor : 1 } : { op, indices: null });
    if (current !== x) current.dispose();
    current = out;
  });
  return current;
}

/** One pass of expand: y[o, s, i] = t[o, i] (times 1, which changes no value). */
function expandPass(t: Tensor, view: AxisView, one: Tensor): Tensor {
  const y = empty([view.outer, view.size, view.inner], t.backend);
  t.backend.binary("mul", t.buffer, one.buffer, y.buffer, {
    dims: [1, view.outer, view.size, view.inner], aStrides: [0, view.inner, 0, 1], bStrides: [0, 0, 0, 0],
  });
  return y;
}

/** t, reduced over `axes` of `shape` (any shape of that size), repeated back over them: shape `shape`. */
export function expandTo(t: Tensor, shape: Shape, axes: readonly number[]): Tensor {
  const one = full([], 1, t.backend);
  let current = t;
  for (const view of axisPasses(shape, axes).reverse()) {
    const next = expandPass(current, view, one);
    if (current !== t) current.dispose();
    current = next;
  }
  one.dispose();
  if (current === t) return t.detach();
  const out = reshape(current, shape);
  current.dispose();
  return out;
}

/** sum or mean over `axes` (normalised); the gradient is dy (divided by the count, for a mean) expanded back. */
function sumOver(name: "sum" | "mean", x: Tensor, axes: number[], keepdim: boolean): Tensor {
  const count = reducedCount(x.shape, axes);
  const divisor = name === "mean" ? count : 1;
  const outShape = reducedShape(x.shape, axes, keepdim);
  if (axes.length === x.rank) {
    return record(name, sumAll(x, 1 / divisor, outShape), [x], [], (dy) => [spread(dy, x.shape, 1 / divisor)]);
  }
  const y = reducePasses(x, axes, "sum", outShape, divisor);
  return record(name, y, [x], [], (dy) => {
    if (divisor === 1) return [expandTo(dy, x.shape, axes)];
    // PyTorch's mean backward divides the expanded gradient by the count: the same values, divided first
    const scaled = div(dy, divisor);
    const dx = expandTo(scaled, x.shape, axes);
    scaled.dispose();
    return [dx];
  });
}

/** Σ x over `axes` (every axis when omitted), keeping them as size 1 with `keepdim`. */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return sumOver("sum", x, normaliseAxes("sum", x.shape, axes), keepdim);
}

/** The mean of x over `axes` (every axis when omitted), keeping them as size 1 with `keepdim`. */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return sumOver("mean", x, normaliseAxes("mean", x.shape, axes), keepdim);
}

function checkNotEmpty(op: string, x: Tensor, axes: readonly number[]): void {
  if (reducedCount(x.shape, axes) === 0) {
    throw new ShapeError(`${op}: cannot reduce over an empty axis of ${fmt(x.shape)} (no identity)`);
  }
}

/** The largest (max) or smallest (min) values over `axes`; the gradient is split evenly among ties. */
function extremes(op: "max" | "min", name: string, x: Tensor, axes: Axes, keepdim: boolean): Tensor {
  const reduced = normaliseAxes(name, x.shape, axes);
  checkNotEmpty(name, x, reduced);
  const keepShape = reducedShape(x.shape, reduced, true);
  const y = reducePasses(x, reduced, op, reducedShape(x.shape, reduced, keepdim));
  return record(name, y, [x], [x, y], (dy, [sx, sy]) => {
    // (dy / count) · mask, with mask = (x == y) and count its sum over the axes (torch.amax's rule)
    const yx = expandTo(sy, x.shape, reduced);
    const mask = binaryForward("eq", sx, yx);
    const count = reducePasses(mask, reduced, "sum", keepShape);
    const dyKeep = reshape(dy, keepShape);
    const share = binaryForward("div", dyKeep, count);
    const shareX = expandTo(share, x.shape, reduced);
    const dx = binaryForward("mul", shareX, mask);
    for (const t of [yx, mask, count, dyKeep, share, shareX]) t.dispose();
    return [dx];
  });
}

/** The largest values over `axes` (every axis when omitted); gradient: evenly among ties. */
export function amax(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extremes("max", "amax", x, axes, keepdim);
}

/** The smallest values over `axes` (every axis when omitted); gradient: evenly among ties. */
export function amin(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  return extremes("min", "amin", x, axes, keepdim);
}

/** Values and their positions along the axis (float), as torch.max(x, dim) returns them. */
export interface ValuesAndIndices {
  values: Tensor;
  indices: Tensor;
}

/** The extreme along one axis and its index (the first NaN, else the first extreme); the gradient goes to that index. */
function extremeAlong(op: "max" | "min", x: Tensor, axis: number, keepdim: boolean): ValuesAndIndices {
  const [a] = normaliseAxes(op, x.shape, axis);
  const reduced = a === undefined ? [] : [a];
  checkNotEmpty(op, x, reduced);
  const shape = reducedShape(x.shape, reduced, keepdim);
  const view = axisPasses(x.shape, reduced)[0] ?? { outer: 1, size: 1, inner: 1 };
  const backend = x.backend;
  const y = empty(shape, backend);
  const indices = empty(shape, backend);
  backend.reduceAxis(x.buffer, y.buffer, view, { op, indices: indices.buffer });
  const values = record(op, y, [x], [indices], (dy, [si]) => {
    const dx = empty(x.shape, backend);
    backend.scatterAxis(dy.buffer, si.buffer, dx.buffer, view);
    return [dx];
  });
  return { values, indices };
}

/** max(x): the largest value (amax over every axis). max(x, axis): values and indices along it. */
export function max(x: Tensor): Tensor;
export function max(x: Tensor, axis: number, keepdim?: boolean): ValuesAndIndices;
export function max(x: Tensor, axis?: number, keepdim = false): Tensor | ValuesAndIndices {
  return axis === undefined ? amax(x) : extremeAlong("max", x, axis, keepdim);
}

/** min(x): the smallest value (amin over every axis). min(x, axis): values and indices along it. */
export function min(x: Tensor): Tensor;
export function min(x: Tensor, axis: number, keepdim?: boolean): ValuesAndIndices;
export function min(x: Tensor, axis?: number, keepdim = false): Tensor | ValuesAndIndices {
  return axis === undefined ? amin(x) : extremeAlong("min", x, axis, keepdim);
}

/** The index of the largest value along `axis` (as a float; the first NaN, else the first maximum). */
export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = extremeAlong("max", x, axis, keepdim);
  values.dispose();
  return indices;
}

/** The index of the smallest value along `axis` (as a float; the first NaN, else the first minimum). */
export function argmin(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = extremeAlong("min", x, axis, keepdim);
  values.dispose();
  return indices;
}
