/**
 * Products of stacks of small matrices, [B, n, k] · [B, k, p] with either operand read
 * transposed, written as a broadcast product and a sum over the shared index (rank 4: the
 * broadcast tier's limit). That costs B·n·k·p multiplications in memory, which is nothing for
 * the few small matrices it serves (eigh's gradient, ZCA's whitening matrices) and gives a
 * product that runs, and differentiates, on every backend with no kernel of its own. Large
 * products belong to matmul's GEMM.
 */
import { ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";
import { sum } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { expectRank, fmt } from "./util.ts";

export interface BatchedMatmulOptions {
  /** Read a as [B, k, n] (aᵀ). */
  transA?: boolean;
  /** Read b as [B, p, k] (bᵀ). */
  transB?: boolean;
}

/** op(a) · op(b) for each of the B matrices of a and b ([B, ·, ·] each), into [B, n, p]. */
export function batchedMatmul(a: Tensor, b: Tensor, { transA = false, transB = false }: BatchedMatmulOptions = {}): Tensor {
  expectRank("batchedMatmul", "a", a, 3);
  expectRank("batchedMatmul", "b", b, 3);
  const [B, a1, a2] = a.shape;
  const [B2, b1, b2] = b.shape;
  const [n, k] = transA ? [a2, a1] : [a1, a2];
  const [k2, p] = transB ? [b2, b1] : [b1, b2];
  if (B !== B2 || k !== k2) {
    throw new ShapeError(`batchedMatmul: ${fmt(a.shape)}${transA ? "ᵀ" : ""} · ${fmt(b.shape)}${transB ? "ᵀ" : ""} do not match`);
  }
  // Both operands as views over four axes (B and a permutation of n, k, p), then a sum over k.
  let left: Tensor, right: Tensor, axis: number;
  if (!transA && !transB) { // a[B,n,k,1] · b[B,1,k,p], sum k (axis 2)
    left = reshape(a, [B, n, k, 1]);
    right = reshape(b, [B, 1, k, p]);
    axis = 2;
  } else if (!transA) { // a[B,n,1,k] · b stored [B,p,k] as [B,1,p,k], sum k (axis 3)
    left = reshape(a, [B, n, 1, k]);
    right = reshape(b, [B, 1, p, k]);
    axis = 3;
  } else if (!transB) { // a stored [B,k,n] as [B,k,n,1] · b[B,k,1,p], sum k (axis 1)
    left = reshape(a, [B, k, n, 1]);
    right = reshape(b, [B, k, 1, p]);
    axis = 1;
  } else {
    // aᵀbᵀ = (ba)ᵀ: not needed by any caller, and it has no view-only layout.
    throw new ShapeError("batchedMatmul: transA and transB together are not supported");
  }
  const terms = mul(left, right);
  const out = sum(terms, [axis]);
  for (const t of [left, right, terms]) t.dispose();
  return out;
}

