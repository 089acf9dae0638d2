/**
 * The axes a reduction runs over, and how the kernels see them. Axes are given as PyTorch's
 * `dim` (one or several, negative counting from the end; omitted: every axis) and normalised
 * here once. The reduce kernels read a tensor as [outer, size, inner] and reduce the middle
 * axis, so a reduction over several axes runs as passes, one per run of adjacent reduced axes
 * (a run merges into one middle axis), innermost run first: the first pass then sums
 * contiguous rows wherever the last axis is reduced.
 */
import type { AxisView } from "../backend/backend.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { sizeOf, type Shape } from "../tensor.ts";
import { fmt } from "./util.ts";

/** One axis, several, or null/undefined for every axis. */
export type Axes = number | readonly number[] | null | undefined;

/** The reduced axes of `shape`, sorted and non-negative; every axis when `axes` is omitted. */
export function normaliseAxes(op: string, shape: Shape, axes: Axes): number[] {
  if (axes === null || axes === undefined) return shape.map((_, i) => i);
  const list = typeof axes === "number" ? [axes] : [...axes];
  if (list.length === 0) throw new ValueError(`${op}: axes is empty; omit it to reduce over every axis`);
  // A 0-d tensor has one element: axis 0 (or −1) is all of it, as in PyTorch.
  const rank = Math.max(1, shape.length);
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new ShapeError(`${op}: axis ${a} is out of range for shape ${fmt(shape)}`);
    }
    return a < 0 ? a + rank : a;
  });
  if (shape.length === 0) return [];
  if (new Set(out).size !== out.length) throw new ValueError(`${op}: axis repeated in ${JSON.stringify(list)}`);
  return out.sort((a, b) => a - b);
}

/** `shape` with the reduced axes set to 1 (keepdim) or removed. */
export function reducedShape(shape: Shape, axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Elements reduced into each output. */
export function reducedCount(shape: Shape, axes: readonly number[]): number {
  return axes.reduce((n, a) => n * shape[a], 1);
}

/**
 * The passes of a reduction of `shape` over `axes`: one per run of adjacent axes, innermost
 * first, each with its [outer, size, inner] view of the tensor as the earlier passes left it
 * (their axes at size 1). Expanding back over the same axes runs the passes in reverse.
 */
export function axisPasses(shape: Shape, axes: readonly number[]): AxisView[] {
  const runs: [number, number][] = [];
  for (const a of axes) {
    const last = runs[runs.length - 1];
    if (last && last[1] === a - 1) last[1] = a;
    else runs.push([a, a]);
  }
  const current = [...shape];
  return runs.reverse().map(([first, last]) => {
    const view = {
      outer: sizeOf(current.slice(0, first)),
      size: sizeOf(current.slice(first, last + 1)),
      inner: sizeOf(current.slice(last + 1)),
    };
    for (let a = first; a <= last; a++) current[a] = 1;
    return view;
  });
}
