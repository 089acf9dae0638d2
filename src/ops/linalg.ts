/**
 * Matrix products on the GEMM kernel. The kernel reads either operand transposed in place,
 * so the backward products (dy·Bᵀ, Aᵀ·dy) never materialise a transpose.
 */
import { record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { expectRank, fmt, sameBackend } from "./util.ts";

/** C = op(A)·op(B) into a new [M, N] tensor. */
function gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: Tensor, B: Tensor): Tensor {
  const c = empty([M, N], A.backend);
  A.backend.gemm({ transA, transB, M, N, K, alpha: 1, a: A.buffer, b: B.buffer, beta: 0, c: c.buffer });
  return c;
}

/** a [M, K] · b [K, N] */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectRank("matmul", "a", a, 2);
  expectRank("matmul", "b", b, 2);
  sameBackend("matmul", a, b);
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new ShapeError(`matmul: inner dims differ: a ${fmt(a.shape)} · b ${fmt(b.shape)}`);
  return record("matmul", gemm(false, false, M, N, K, a, b), [a, b], [a, b], (dy, [sa, sb]) => [
    a.requiresGrad ? gemm(false, true, M, K, N, dy, sb) : null,
    b.requiresGrad ? gemm(true, false, K, N, M, sa, dy) : null,
  ]);
}

/** x [N, in] · weightᵀ [in, out] + bias [out] (PyTorch's nn.Linear layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  expectRank("linear", "input", x, 2);
  expectRank("linear", "weight", weight, 2);
  sameBackend("linear", x, weight);
  const [N, inFeatures] = x.shape;
  const [outFeatures, wIn] = weight.shape;
  if (inFeatures !== wIn) {
    throw new ShapeError(`linear: input ${fmt(x.shape)} has ${inFeatures} features but weight ${fmt(weight.shape)} expects ${wIn}`);
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== outFeatures)) {
    throw new ShapeError(`linear: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)} (expected [${outFeatures}])`);
  }
  const y = record(
    "linear", gemm(false, true, N, outFeatures, inFeatures, x, weight), [x, weight], [x, weight],
    (dy, [sx, sw]) => [
      x.requiresGrad ? gemm(false, false, N, inFeatures, outFeatures, dy, sw) : null,
      weight.requiresGrad ? gemm(true, false, outFeatures, inFeatures, N, dy, sx) : null,
    ],
  );
  if (!bias) return y;
  const out = add(y, bias);
  y.dispose();
  return out;
}
