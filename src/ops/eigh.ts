/**
 * The eigendecomposition of symmetric matrices with a backprop-friendly gradient (Wang, Nie,
 * Salzmann, Fua, "Backpropagation-Friendly Eigendecomposition", NeurIPS 2019). The forward
 * is exact (Jacobi in float64, jacobi.ts). The analytic gradient of an eigenvector,
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
 * under both rules. The decomposition and its gradient run on the host in float64: the
 * matrices are small, and the op needs the CPU backend's synchronous reads.
 */
import { customGrad } from "../functional.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { tensor, type Tensor } from "../tensor.ts";
import { symmetricEigen, type SymmetricEigen } from "./jacobi.ts";
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
  /** [..., n, n]; column i is the eigenvector of values[..., i]. */
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
  if (m.backend.name !== "cpu") {
    throw new ValueError(`eigh: runs on the CPU backend (its forward reads the matrix synchronously), got a tensor on ${m.backend.name}; move it to the CPU first`);
  }
  const batch = m.rank === 3 ? m.shape[0] : 1;
  const data = m.dataSync();
  const decompositions: SymmetricEigen[] = [];
  for (let b = 0; b < batch; b++) {
    const block = data.subarray(b * n * n, (b + 1) * n * n);
    checkSymmetric(block, n, b, m.rank === 3);
    decompositions.push(symmetricEigen(block, n));
  }
  const joined = (pick: (d: SymmetricEigen) => Float64Array) => {
    const out = new Float32Array(batch * pick(decompositions[0]).length);
    decompositions.forEach((d, b) => out.set(pick(d), b * pick(d).length));
    return out;
  };
  const batchShape = m.shape.slice(0, -2);
  const valuesOp = customGrad({
    name: "eigh.values",
    forward: () => ({ output: tensor(joined((d) => d.values), [...batchShape, n], m.backend) }),
    backward: (dy) => [gradientOfM(decompositions, n, dy.dataSync(), null, m)],
  });
  const vectorsOp = customGrad({
    name: "eigh.vectors",
    forward: () => ({ output: tensor(joined((d) => d.vectors), m.shape, m.backend) }),
    backward: (dy) => [gradientOfM(decompositions, n, null, dy.dataSync(), m, rule, iterations)],
  });
  return { values: valuesOp(m), vectors: vectorsOp(m) };
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

/** K̃ᵢⱼ (see the file's header), or the analytic 1/(λᵢ − λⱼ). */
function coefficient(li: number, lj: number, before: boolean, rule: EighBackward, K: number): number {
  if (rule === "analytic") return 1 / (li - lj);
  // j after i: (1/λᵢ) Σ_{k<K} (λⱼ/λᵢ)^k; j before i: −(1/λⱼ) Σ_{k<K−1} (λᵢ/λⱼ)^k
  const [top, ratio, terms] = before ? [lj, li / lj, K - 1] : [li, lj / li, K];
  let sum = 0, power = 1;
  for (let k = 0; k < terms; k++) {
    sum += power;
    power *= ratio;
  }
  return (before ? -sum : sum) / top;
}

/**
 * dL/dM for every matrix, symmetrised: from the eigenvalues' gradient gλ (V diag(gλ) Vᵀ) or
 * from the eigenvectors' gradient G (V (K̃ᵀ ∘ VᵀG) Vᵀ).
 */
function gradientOfM(
  decompositions: readonly SymmetricEigen[], n: number, gValues: Float32Array | null, gVectors: Float32Array | null,
  m: Tensor, rule: EighBackward = "analytic", K = 0,
): Tensor {
  const out = new Float32Array(decompositions.length * n * n);
  decompositions.forEach((d, b) => {
    const grad = eighGradient(d, n, gValues?.subarray(b * n, (b + 1) * n) ?? null, gVectors?.subarray(b * n * n, (b + 1) * n * n) ?? null, rule, K, b);
    out.set(grad, b * n * n);
  });
  return tensor(out, m.shape, m.backend);
}

/**
 * dL/dM of one symmetric [n, n] matrix M = V diag(λ) Vᵀ (row-major, float64), symmetrised,
 * from its eigenvalues' gradient gλ and its eigenvectors' gradient G (either may be null),
 * under the backward `rule` with K power-iteration steps (see the file's header). Shared
 * with the ZCA whitening op (zca.ts), whose whitening matrix is a function of V and λ.
 */
export function eighGradient(
  { values: lam, vectors: V }: SymmetricEigen, n: number, gValues: ArrayLike<number> | null, gVectors: ArrayLike<number> | null,
  rule: EighBackward, K: number, index = 0,
): Float64Array {
  if (gVectors && rule === "power-iteration" && !(lam[n - 1] > 0)) {
    throw new ValueError(`eigh: the power-iteration backward needs a positive definite matrix; matrix ${index} has eigenvalue ${lam[n - 1]}`);
  }
  // inner = the [n, n] matrix between V and Vᵀ
  const inner = new Float64Array(n * n);
  if (gValues) for (let i = 0; i < n; i++) inner[i * n + i] = gValues[i];
  if (gVectors) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < n; i++) {
        if (i === j) continue;
        let vjgi = 0; // (VᵀG)ⱼᵢ = vⱼᵀ gᵢ
        for (let r = 0; r < n; r++) vjgi += V[r * n + j] * gVectors[r * n + i];
        inner[j * n + i] = coefficient(lam[i], lam[j], j < i, rule, K) * vjgi;
      }
    }
  }
  const grad = sandwich(V, inner, n);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) out[r * n + c] = (grad[r * n + c] + grad[c * n + r]) / 2;
  }
  return out;
}

/** A [g, g] · rows [g, m], row-major, in float64 (zero entries of A skipped). */
export function matmulRows(a: Float64Array, rows: Float64Array, g: number, m: number): Float64Array {
  const out = new Float64Array(g * m);
  for (let i = 0; i < g; i++) {
    for (let j = 0; j < g; j++) {
      const f = a[i * g + j];
      if (f === 0) continue;
      for (let k = 0; k < m; k++) out[i * m + k] += f * rows[j * m + k];
    }
  }
  return out;
}

/** V · inner · Vᵀ for row-major [n, n] matrices. */
export function sandwich(V: Float64Array, inner: Float64Array, n: number): Float64Array {
  const left = matmulRows(V, inner, n, n);
  const out = new Float64Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += left[r * n + k] * V[c * n + k];
      out[r * n + c] = s;
    }
  }
  return out;
}
