/**
 * Shape rules shared by the ops: checks that name the op and the shapes involved, and the
 * broadcasting arithmetic (NumPy rules) that the elementwise kernels take: a rank-4 view, any
 * rank whose broadcast pattern folds into four runs of dimensions.
 */
import type { Broadcast4, BroadcastSelect } from "../backend/backend.ts";
import { ShapeError } from "../errors.ts";
import type { Shape, Tensor } from "../tensor.ts";

export function fmt(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export function expectRank(op: string, name: string, t: Tensor, ...ranks: number[]): void {
  if (!ranks.includes(t.rank)) {
    throw new ShapeError(`${op}: ${name} must have rank ${ranks.join(" or ")}, got shape ${fmt(t.shape)}`);
  }
}

export function sameBackend(op: string, ...tensors: Tensor[]): void {
  const name = tensors[0].backend.name;
  for (const t of tensors) {
    if (t.backend !== tensors[0].backend) {
      throw new ShapeError(`${op}: tensors live on different backends (${name} and ${t.backend.name})`);
    }
  }
}

/** The broadcast result shape of the operands' shapes (NumPy rules), or a ShapeError naming the op and the shapes. */
export function broadcastShape(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const dims = shapes.map((s) => s[s.length - rank + i] ?? 1);
    const size = dims.find((d) => d !== 1) ?? 1;
    if (dims.some((d) => d !== 1 && d !== size)) {
      throw new ShapeError(`${op}: shapes ${shapes.map(fmt).join(" and ")} cannot be broadcast together`);
    }
    out.push(size);
  }
  return out;
}

type Four = [number, number, number, number];

function padTo4(shape: Shape): Four {
  const padded = [1, 1, 1, 1, ...shape].slice(-4);
  return padded as Four;
}

/** Element strides of `shape` read as `out` (right-aligned), 0 where it is broadcast. */
function broadcastStrides(shape: Shape, out: Four): Four {
  const dims = padTo4(shape);
  const strides: Four = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = dims[i] === 1 && out[i] !== 1 ? 0 : stride;
    stride *= dims[i];
  }
  return strides;
}

/**
 * The kernels' rank-4 view of a broadcast to `out`: its dims and each operand's element
 * strides (0 on broadcast dims). Up to rank 4 the dims are `out`'s, padded with leading 1s;
 * beyond, neighbouring dims are merged where every operand treats them alike (spans both or
 * is broadcast along both), which must leave at most four.
 */
function broadcastView(op: string, out: Shape, operands: Shape[]): { dims: Four; strides: Four[] } {
  if (out.length <= 4) {
    const dims = padTo4(out);
    return { dims, strides: operands.map((s) => broadcastStrides(s, dims)) };
  }
  const groups: { size: number; spans: boolean[] }[] = [];
  out.forEach((size, i) => {
    if (size === 1) return;
    const spans = operands.map((s) => (s[s.length - out.length + i] ?? 1) !== 1);
    const last = groups[groups.length - 1];
    if (last && last.spans.every((v, k) => v === spans[k])) last.size *= size;
    else groups.push({ size, spans });
  });
  if (groups.length > 4) {
    throw new ShapeError(`${op}: broadcasting ${operands.map(fmt).join(" and ")} to ${fmt(out)} takes more than 4 runs of dimensions`);
  }
  const dims = padTo4(groups.map((g) => g.size));
  const strides = operands.map((_, k) => {
    const st: Four = [0, 0, 0, 0];
    let stride = 1;
    for (let g = groups.length - 1; g >= 0; g--) {
      if (!groups[g].spans[k]) continue;
      st[4 - groups.length + g] = stride;
      stride *= groups[g].size;
    }
    return st;
  });
  return { dims, strides };
}

export function broadcast4(out: Shape, a: Shape, b: Shape, op = "broadcast"): Broadcast4 {
  const { dims, strides: [aStrides, bStrides] } = broadcastView(op, out, [a, b]);
  return { dims, aStrides, bStrides };
}

/** The view of where(cond, a, b) broadcast to `out`. */
export function broadcastSelect(out: Shape, cond: Shape, a: Shape, b: Shape, op = "where"): BroadcastSelect {
  const { dims, strides: [cStrides, aStrides, bStrides] } = broadcastView(op, out, [cond, a, b]);
  return { dims, cStrides, aStrides, bStrides };
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
