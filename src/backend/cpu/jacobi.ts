/**
 * The eigendecomposition of a small real symmetric matrix in float64 by cyclic Jacobi
 * rotations (Golub & Van Loan, "Matrix Computations", §8.5): each rotation zeroes one
 * off-diagonal pair, sweeps repeat until the off-diagonal mass is negligible, and the product
 * of the rotations holds the eigenvectors. Jacobi is chosen over tridiagonal QR because it is
 * short, accurate to full relative precision on the small (≤ a few hundred) covariance
 * matrices it serves, and needs no library. Host code: the CPU backend's symmetricEigen runs
 * it on the matrices it reads from its memory (the WebGPU backend's is gpu/kernels/jacobi.ts).
 *
 * Eigenvalues come in descending order (the order power iteration finds them in), and each
 * eigenvector's sign is fixed so that its largest-magnitude component is positive, so the
 * same matrix always gives the same vectors.
 */

export interface SymmetricEigen {
  /** Descending. */
  values: Float64Array;
  /** Row-major [n, n]; column i is the unit eigenvector of values[i]. */
  vectors: Float64Array;
}

const MAX_SWEEPS = 60;

/** The eigendecomposition of the symmetric row-major [n, n] matrix `a` (its upper triangle is read). */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) m[i * n + j] = m[j * n + i] = a[i * n + j];
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let k = 0; k < n * n; k++) scale += m[k] * m[k];
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] * m[p * n + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) rotate(m, v, n, p, q);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => m[y * n + y] - m[x * n + x]);
  const values = new Float64Array(order.map((i) => m[i * n + i]));
  const vectors = new Float64Array(n * n);
  order.forEach((src, col) => {
    let largest = 0;
    for (let r = 0; r < n; r++) if (Math.abs(v[r * n + src]) > Math.abs(v[largest * n + src])) largest = r;
    const sign = v[largest * n + src] < 0 ? -1 : 1;
    for (let r = 0; r < n; r++) vectors[r * n + col] = sign * v[r * n + src];
  });
  return { values, vectors };
}

/** One Jacobi rotation in the (p, q) plane that zeroes m[p][q], applied to m (both sides) and v (right). */
function rotate(m: Float64Array, v: Float64Array, n: number, p: number, q: number): void {
  const apq = m[p * n + q];
  if (apq === 0) return;
  const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
  // The smaller root of t² + 2θt − 1 = 0: the rotation angle of at most π/4, for stability.
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1), s = t * c;
  for (let k = 0; k < n; k++) {
    const mkp = m[k * n + p], mkq = m[k * n + q];
    m[k * n + p] = c * mkp - s * mkq;
    m[k * n + q] = s * mkp + c * mkq;
  }
  for (let k = 0; k < n; k++) {
    const mpk = m[p * n + k], mqk = m[q * n + k];
    m[p * n + k] = c * mpk - s * mqk;
    m[q * n + k] = s * mpk + c * mqk;
  }
  for (let k = 0; k < n; k++) {
    const vkp = v[k * n + p], vkq = v[k * n + q];
    v[k * n + p] = c * vkp - s * vkq;
    v[k * n + q] = s * vkp + c * vkq;
  }
}
