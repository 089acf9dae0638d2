/**
 * WGSL for the eigendecomposition of a stack of small symmetric matrices by cyclic Jacobi
 * rotations (Golub & Van Loan, "Matrix Computations", §8.5), the float32 counterpart of the
 * CPU backend's float64 src/backend/cpu/jacobi.ts: the same rotation (the smaller root, an
 * angle of at most π/4), the same cyclic order, descending eigenvalues with ties in input
 * order and the same sign rule for the vectors. One workgroup per matrix, held with its
 * accumulated rotations in workgroup memory; thread k updates row/column k of each rotation,
 * so n is at most JACOBI_MAX_N. A fixed JACOBI_SWEEPS sweeps instead of a convergence test:
 * Jacobi converges quadratically, and a data-dependent exit would put the barriers in
 * non-uniform control flow; a rotation of an already-zero entry is the identity.
 */
import { entryPoint, type KernelSpec, read, write } from "../kernel.ts";

/** The largest n the kernel takes (threads per workgroup, and the workgroup memory it sizes). */
export const JACOBI_MAX_N = 32;

/**
 * Sweeps of the n(n − 1)/2 rotations each. Measured (test/webgpu_eigh.test.ts's spectra,
 * n ≤ 32) the off-diagonal mass reaches float32 rounding within 8; 12 leaves a margin.
 */
export const JACOBI_SWEEPS = 12;

const N = JACOBI_MAX_N;

export const symmetricEigenKernel: KernelSpec = {
  key: "symmetric_eigen",
  params: [["batch", "u32"], ["n", "u32"]],
  bindings: [read("m"), write("values"), write("vectors")],
  code: `var<workgroup> a: array<f32, ${N * N}>;
var<workgroup> v: array<f32, ${N * N}>;
var<workgroup> order: array<u32, ${N}>;
var<workgroup> signs: array<f32, ${N}>;

/** (c, s) of the rotation in the (p, q) plane that zeroes a[p][q]; (1, 0) when it is zero already. */
fn rotation(p: u32, q: u32) -> vec2<f32> {
  let n = P.n;
  let apq = a[p * n + q];
  let nonzero = apq != 0.0;
  let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * select(1.0, apq, nonzero));
  let huge = abs(theta) > 1e18; // θ² would overflow: t ≈ 1/(2θ)
  let root = select(sqrt(theta * theta + 1.0), 1.0, huge);
  let sgn = select(-1.0, 1.0, theta >= 0.0);
  var t = select(sgn / (abs(theta) + root), 0.5 / theta, huge);
  t = select(0.0, t, nonzero);
  let c = 1.0 / sqrt(t * t + 1.0);
  return vec2<f32>(c, t * c);
}

${entryPoint(N, "b", "P.batch", `let n = P.n;
  let base = b * n * n;
  let k = lid;
  // load the upper triangle, mirrored; V = I
  if (k < n) {
    for (var j = 0u; j < n; j = j + 1u) {
      let r = min(k, j);
      let col = max(k, j);
      a[k * n + j] = m[base + r * n + col];
      v[k * n + j] = select(0.0, 1.0, k == j);
    }
  }
  workgroupBarrier();
  for (var sweep = 0u; sweep < ${JACOBI_SWEEPS}u; sweep = sweep + 1u) {
    for (var p = 0u; p + 1u < n; p = p + 1u) {
      for (var q = p + 1u; q < n; q = q + 1u) {
        let cs = rotation(p, q);
        workgroupBarrier(); // every thread has read a[p][q], a[p][p], a[q][q]
        let c = cs.x;
        let s = cs.y;
        if (k < n) { // columns p and q
          let akp = a[k * n + p];
          let akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        workgroupBarrier();
        if (k < n) { // rows p and q, and V's columns
          let apk = a[p * n + k];
          let aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
          let vkp = v[k * n + p];
          let vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
        workgroupBarrier();
      }
    }
  }
  if (k == 0u) {
    // descending, ties in input order (a stable selection sort); each vector's sign
    var taken = array<bool, ${N}>();
    for (var col = 0u; col < n; col = col + 1u) {
      var best = n;
      for (var i = 0u; i < n; i = i + 1u) {
        if (!taken[i] && (best == n || a[i * n + i] > a[best * n + best])) { best = i; }
      }
      taken[best] = true;
      order[col] = best;
      var largest = 0u;
      for (var r = 1u; r < n; r = r + 1u) {
        if (abs(v[r * n + best]) > abs(v[largest * n + best])) { largest = r; }
      }
      signs[col] = select(1.0, -1.0, v[largest * n + best] < 0.0);
    }
  }
  workgroupBarrier();
  if (k < n) {
    let src = order[k];
    values[b * n + k] = a[src * n + src];
    for (var col = 0u; col < n; col = col + 1u) {
      vectors[base + k * n + col] = signs[col] * v[k * n + order[col]];
    }
  }`, true)}`,
};
