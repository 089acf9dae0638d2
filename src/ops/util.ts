/**
 * Shape rules shared by the ops: checks that name the op and the shapes involved, and the
 * broadcasting arithmetic (NumPy rules, up to rank 4) that the elementwise kernels take.
 */
import type { Broadcast4 } from "../backend/backend.ts";
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

/** The broadcast result shape of a and b, or a ShapeError naming the op and both shapes. */
export function broadcastShape(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  if (rank > 4) throw new ShapeError(`${op}: broadcasting supports rank ≤ 4, got ${fmt(a)} and ${fmt(b)}`);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast together`);
    }
    out.push(da === 1 ? db : da);
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

export function broadcast4(out: Shape, a: Shape, b: Shape): Broadcast4 {
  const dims = padTo4(out);
  return { dims, aStrides: broadcastStrides(a, dims), bStrides: broadcastStrides(b, dims) };
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
