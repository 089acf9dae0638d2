/**
 * The eigendecomposition of symmetric matrices with a backprop-friendly gradient (Wang, Nie,
 * Salzmann, Fua, "Backpropagation-Friendly Eigendecomposition", NeurIPS 2019). The forward
 * is exact (Jacobi rotations, below). The analytic gradient of an eigenvector,
 * dvᵢ = Σ_{j≠i} vⱼ (vⱼᵀ dM vᵢ)/(λᵢ − λⱼ), blows up as two eigenvalues meet; the paper instead
 * backpropagates through K steps of power iteration with deflation started at the exact
 * eigenvectors (K = 19 in the paper), which stays bounded.
 *
 * Here that backward is used in closed form. Power iteration for vᵢ runs on the deflated
 * Mᵢ = M − Σ_{l<i} λₗ vₗvₗᵀ (λₗ = vₗᵀMvₗ, vₗ the iterated earlier vectors, both differentiated
 * through), v ← Mᵢv/‖Mᵢv‖. Started at its fixed point, its K-step derivative is the analytic
 * formula with 1/(λᵢ − λⱼ) replaced by a truncated geometric (Taylor) series:
 *   j after i (λⱼ ≤ λᵢ):  K̃ᵢⱼ = (1/λᵢ)·Σ_{k<K} (λⱼ/λᵢ)^k      = (1 − (λⱼ/λᵢ)^K)/(λᵢ − λⱼ)
 *   j before i (λⱼ ≥ λᵢ): K̃ᵢⱼ = −(1/λⱼ)·Σ_{k<K−1} (λᵢ/λⱼ)^k  = (1 − (λᵢ/λⱼ)^{K−1})/(λᵢ − λⱼ)
 * (the second through the deflation), which tends to the analytic 1/(λᵢ − λⱼ) as K grows and
 * is at most K/λ when λᵢ = λⱼ. test/eigh.test.ts checks it against the derivative of the
 * literal unrolled iteration taken by the tape. The series needs positive eigenvalues (power
 * iteration finds the largest magnitude): the op is for symmetric positive definite matrices
 * such as a covariance plus εI, and its backward says so otherwise.
 *
 * `backward: "analytic"` gives the exact derivative instead (what the paper reports as NaN in
 * training), for comparison. The gradient with respect to M is symmetrised, (G + Gᵀ)/2, so it
 * is the gradient for any symmetric perturbation. Eigenvalues have the exact gradient vᵢvᵢᵀ
 * under both rules.
 *
 * The decomposition is the backend's symmetricEigen (float64 Jacobi on the CPU, float32
 * Jacobi in WGSL on WebGPU, n ≤ 32 there); the gradient is written in tensor ops over the
 * stack of matrices (batched_matmul.ts), so both run on every backend. Where the backend
 * reads synchronously (the CPU) the input is checked to be symmetric and, under the
 * power-iteration backward, positive definite, with a ValueError otherwise; on WebGPU the
 * upper triangle is read as it is, and the power-iteration gradient of a matrix that is not
 * positive definite is NaN (for the trainer's non-finite check to see).
 */
import { record } from "../autograd.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { empty, keep, tensor, type Tensor, tidy, tracked } from "../tensor.ts";
import { batchedMatmul } from "./batched_matmul.ts";
import { gt, maximum, minimum, where } from "./compare.ts";
import { add, div, mul, scale, sub } from "./elementwise.ts";
import { amin } from "./reduce.ts";
import { reshape } from "./shape.ts";
import { neg } from "./unary.ts";
import { fmt } from "./util.ts";

/** "power-iteration": the paper's bounded gradient; "analytic": the exact one. */
export type EighBackward = "power-iteration" | "analytic";

export interface EighOptions {
  /** "power-iteration" (default): the paper's bounded gradient; "analytic": the exact one. */
  backward?: EighBackward;
  /** Power-iteration steps the backward differentiates (the paper's 19). */
  iterations?: number;
}

export interface Eigh {
  /** [..., n], descending. */
  values: Tensor;
  /** [..., n, n]; column i is the eigenvector of values[..., i], its largest-magnitude component positive. */
  vectors: Tensor;
}

/** Relative asymmetry above which the input is refused as not symmetric. */
const SYMMETRY_TOLERANCE = 1e-5;

/** The eigenvalues and eigenvectors of each symmetric [n, n] matrix of `m` ([n, n] or [batch, n, n]). */
export function eigh(m: Tensor, opts: EighOptions = {}): Eigh {
  const rule = opts.backward ?? "power-iteration";
  const iterations = opts.iterations ?? 19;
  if (rule !== "power-iteration" && rule !== "analytic") throw new ValueError(`eigh: backward must be "power-iteration" or "analytic", got ${JSON.stringify(rule)}`);
  if (!Number.isInteger(iterations) || iterations < 2) throw new ValueError(`eigh: iterations must be an integer ≥ 2, got ${iterations}`);
  const n = m.shape[m.rank - 1];
  if ((m.rank !== 2 && m.rank !== 3) || m.shape[m.rank - 2] !== n) throw new ShapeError(`eigh: expected [n, n] or [batch, n, n], got ${fmt(m.shape)}`);
  const batch = m.rank === 3 ? m.shape[0] : 1;
  const backend = m.backend;
  if (backend.readSync) {
    const data = m.dataSync();
    for (let b = 0; b < batch; b++) checkSymmetric(data.subarray(b * n * n, (b + 1) * n * n), n, b, m.rank === 3);
  }
  const values = empty([...m.shape.slice(0, -2), n], backend), vectors = empty(m.shape, backend);
  backend.symmetricEigen({ m: m.buffer, values: values.buffer, vectors: vectors.buffer, batch, n });
  const stacked = (t: Tensor) => reshape(t, [batch, ...t.shape.slice(m.rank - 2)]); // [batch, n] or [batch, n, n]
  const asM = (grad: Tensor) => {
    const out = reshape(grad, m.shape);
    grad.dispose();
    return out;
  };
  return {
    values: record("eigh.values", values, [m], [vectors], (dy, [V]) => [
      asM(scoped(() => symmetrisedSandwich(stacked(V), mul(stacked(V), reshape(dy, [batch, 1, n]))))),
    ]),
    vectors: record("eigh.vectors", vectors, [m], [values, vectors], (dy, [lam, V]) => [
      asM(scoped(() => vectorsGradient(stacked(lam), stacked(V), stacked(dy), rule, iterations))),
    ]),
  };
}

/** fn's result, every other tensor it made disposed (also inside a backward pass, whose tensors join no scope). */
function scoped(fn: () => Tensor): Tensor {
  return keep(tracked(() => tidy(fn)));
}

function checkSymmetric(a: Float32Array, n: number, b: number, batched: boolean): void {
  let asym = 0, size = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      asym = Math.max(asym, Math.abs(a[i * n + j] - a[j * n + i]));
      size = Math.max(size, Math.abs(a[i * n + j]));
    }
  }
  if (!(asym <= SYMMETRY_TOLERANCE * size)) {
    throw new ValueError(`eigh: matrix ${batched ? `${b} ` : ""}is not symmetric (largest |M − Mᵀ| ${asym} against largest |M| ${size}), or holds NaN`);
  }
}

/** (V Xᵀ + X Vᵀ)/2 = V·(inner + innerᵀ)/2·Vᵀ for X = V·inner: the gradient for symmetric perturbations. */
function symmetrisedSandwich(V: Tensor, X: Tensor): Tensor {
  return scale(add(batchedMatmul(X, V, { transB: true }), batchedMatmul(V, X, { transB: true })), 0.5);
}

/** dL/dM from the eigenvectors' gradient G: V (K̃ ∘ VᵀG) Vᵀ, symmetrised, with K̃ below. */
function vectorsGradient(lam: Tensor, V: Tensor, G: Tensor, rule: EighBackward, K: number): Tensor {
  const inner = mul(coefficients(lam, rule, K), batchedMatmul(V, G, { transA: true })); // (VᵀG)ⱼᵢ = vⱼᵀgᵢ
  return symmetrisedSandwich(V, batchedMatmul(V, inner));
}

/**
 * [batch, n, n]: at (j, i) the coefficient of vⱼᵀgᵢ, K̃ᵢⱼ (see the file's header) or the
 * analytic 1/(λᵢ − λⱼ), 0 on the diagonal. K̃ as (1/max(λᵢ, λⱼ))·Σ_{k<terms} r^k with
 * r = min/max, by Horner's rule: no cancellation as the eigenvalues meet (the closed form
 * (1 − r^K)/(λᵢ − λⱼ) would divide one rounding error by another).
 */
function coefficients(lam: Tensor, rule: EighBackward, K: number): Tensor {
  const [batch, n] = lam.shape;
  const rowLam = reshape(lam, [batch, n, 1]), colLam = reshape(lam, [batch, 1, n]); // λⱼ, λᵢ
  const mask = (holds: (row: number, col: number) => boolean) =>
    tensor(Float32Array.from({ length: n * n }, (_, k) => +holds(Math.floor(k / n), k % n)), [n, n], lam.backend);
  const offDiagonal = mask((j, i) => j !== i);
  if (rule === "analytic") return where(offDiagonal, div(1, sub(colLam, rowLam)), 0);
  const top = maximum(rowLam, colLam);
  const ratio = div(minimum(rowLam, colLam), top);
  let before: Tensor | null = null; // Σ_{k<K−1} r^k (1 when K = 2)
  for (let t = 1; t < K - 1; t++) before = add(before ? mul(ratio, before) : ratio, 1);
  before ??= tensor([1], [1], lam.backend);
  const after = add(mul(ratio, before), 1); // Σ_{k<K} r^k
  // j after i (row below the diagonal): +Σ_{k<K}; j before i: −Σ_{k<K−1}
  const signed = where(mask((j, i) => j > i), after, neg(before));
  const coefficient = where(offDiagonal, div(signed, top), 0);
  return where(positiveDefinite(lam), coefficient, NaN);
}

/**
 * [batch, 1, 1]: 1 where the smallest eigenvalue is positive (the series needs it). Where the
 * backend reads synchronously a matrix that is not is refused by name; elsewhere its
 * gradient becomes NaN.
 */
function positiveDefinite(lam: Tensor): Tensor {
  const [batch, n] = lam.shape;
  if (lam.backend.readSync) {
    const data = lam.dataSync();
    for (let b = 0; b < batch; b++) {
      if (!(data[b * n + n - 1] > 0)) {
        throw new ValueError(`eigh: the power-iteration backward needs a positive definite matrix; matrix ${b} has eigenvalue ${data[b * n + n - 1]}`);
      }
    }
  }
  return gt(reshape(amin(lam, [1]), [batch, 1, 1]), 0);
}
