// Single-precision GEMM: C = alpha·op(A)·op(B) + beta·C, row-major, with optional
// transposition of A and/or B. Blocked GotoBLAS-style: B is packed into KC×NR
// strips and A into MR×KC strips in a fixed scratch area (set once by the runtime
// through set_gemm_scratch), and the MR×NR register block of tile.ts computes each
// C tile. Every C element is accumulated over k in increasing order (K is split into
// fixed KC blocks in increasing order), so results depend only on the inputs and shapes. When beta == 0, C is never read.

import { KC, MC, MR, multiplyTile, NC, NR, PACKA_BYTES, PACKB_BYTES, TILE_BYTES } from "./tile";

let gemmScratch: usize = 0;

/** Bytes of packing scratch that gemm needs (independent of the shapes). */
export function gemm_scratch_bytes(): i32 {
  return PACKA_BYTES + PACKB_BYTES + TILE_BYTES;
}

/** Start of the shared packing scratch (conv.ts's direct kernels reuse it; layout above). */
export function gemmScratchPtr(): usize {
  return gemmScratch;
}

/** Register the scratch area (gemm_scratch_bytes() bytes, 16-byte aligned preferred). */
export function set_gemm_scratch(ptr: usize): void {
  gemmScratch = ptr;
}

// Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row strips: dst[s*MR*kc + p*MR + i].
function packA(transA: i32, A: usize, lda: i32, i0: i32, p0: i32, mc: i32, kc: i32, dst: usize): void {
  for (let s = 0; s < mc; s += MR) {
    const mr = min(MR, mc - s);
    const d = dst + (<usize>(s * kc) << 2);
    if (!transA) {
      // op(A)[i][p] = A[(i0+i)*lda + p0+p]
      if (mr == MR) {
        const r0 = A + (<usize>((i0 + s) * lda + p0) << 2);
        const r1 = r0 + (<usize>lda << 2);
        const r2 = r1 + (<usize>lda << 2);
        const r3 = r2 + (<usize>lda << 2);
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>p << 2;
          const a0 = v128.load(r0 + o);
          const a1 = v128.load(r1 + o);
          const a2 = v128.load(r2 + o);
          const a3 = v128.load(r3 + o);
          // 4x4 transpose
          const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
          const dp = d + (<usize>(p * MR) << 2);
          v128.store(dp, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(dp, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 16);
          v128.store(dp, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 32);
          v128.store(dp, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 48);
        }
        for (; p < kc; p++) {
          const o = <usize>p << 2;
          const dp = d + (<usize>(p * MR) << 2);
          store<f32>(dp, load<f32>(r0 + o));
          store<f32>(dp, load<f32>(r1 + o), 4);
          store<f32>(dp, load<f32>(r2 + o), 8);
          store<f32>(dp, load<f32>(r3 + o), 12);
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const dp = d + (<usize>(p * MR) << 2);
          for (let i = 0; i < MR; i++) {
            const v: f32 = i < mr ? load<f32>(A + (<usize>((i0 + s + i) * lda + p0 + p) << 2)) : 0;
            store<f32>(dp + (<usize>i << 2), v);
          }
        }
      }
    } else {
      // op(A)[i][p] = A[(p0+p)*lda + i0+i]
      if (mr == MR) {
        for (let p = 0; p < kc; p++) {
          v128.store(d + (<usize>(p * MR) << 2), v128.load(A + (<usize>((p0 + p) * lda + i0 + s) << 2)));
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const dp = d + (<usize>(p * MR) << 2);
          const src = A + (<usize>((p0 + p) * lda + i0 + s) << 2);
          for (let i = 0; i < MR; i++) {
            const v: f32 = i < mr ? load<f32>(src + (<usize>i << 2)) : 0;
            store<f32>(dp + (<usize>i << 2), v);
          }
        }
      }
    }
  }
}

// Pack op(B)[p0:p0+kc, j0:j0+nc] into NR-column strips: dst[s*NR*kc + p*NR + j].
export function packB(transB: i32, B: usize, ldb: i32, p0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  for (let s = 0; s < nc; s += NR) {
    const nr = min(NR, nc - s);
    const d = dst + (<usize>(s * kc) << 2);
    if (!transB) {
      // op(B)[p][j] = B[(p0+p)*ldb + j0+j]
      if (nr == NR) {
        for (let p = 0; p < kc; p++) {
          const src = B + (<usize>((p0 + p) * ldb + j0 + s) << 2);
          const dp = d + (<usize>(p * NR) << 2);
          v128.store(dp, v128.load(src));
          v128.store(dp, v128.load(src, 16), 16);
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const src = B + (<usize>((p0 + p) * ldb + j0 + s) << 2);
          const dp = d + (<usize>(p * NR) << 2);
          for (let j = 0; j < NR; j++) {
            const v: f32 = j < nr ? load<f32>(src + (<usize>j << 2)) : 0;
            store<f32>(dp + (<usize>j << 2), v);
          }
        }
      }
    } else {
      // op(B)[p][j] = B[(j0+j)*ldb + p0+p]
      if (nr == NR) {
        const r0 = B + (<usize>((j0 + s) * ldb + p0) << 2);
        const step = <usize>ldb << 2;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>p << 2;
          const dp = d + (<usize>(p * NR) << 2);
          // two 4x4 transposes: rows j=0..3 and j=4..7
          for (let h = 0; h < 2; h++) {
            const rb = r0 + step * <usize>(h * 4) + o;
            storeStripRows(v128.load(rb), v128.load(rb + step), v128.load(rb + step * 2), v128.load(rb + step * 3),
                           dp + (<usize>h << 4));
          }
        }
        for (; p < kc; p++) {
          const dp = d + (<usize>(p * NR) << 2);
          const src = r0 + (<usize>p << 2);
          for (let j = 0; j < NR; j++) {
            store<f32>(dp + (<usize>j << 2), load<f32>(src + step * <usize>j));
          }
        }
      } else {
        for (let p = 0; p < kc; p++) {
          const dp = d + (<usize>(p * NR) << 2);
          for (let j = 0; j < NR; j++) {
            const v: f32 = j < nr ? load<f32>(B + (<usize>((j0 + s + j) * ldb + p0 + p) << 2)) : 0;
            store<f32>(dp + (<usize>j << 2), v);
          }
        }
      }
    }
  }
}

// Four columns j..j+3 of a packed B strip from four vectors a_j = op(B)[p..p+3][j]: a 4×4
// transpose stored into rows p..p+3 of the strip (NR floats apart) at dh.
// @ts-ignore: decorator
@inline
export function storeStripRows(a0: v128, a1: v128, a2: v128, a3: v128, dh: usize): void {
  const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
  v128.store(dh, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dh, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), NR * 4);
  v128.store(dh, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), NR * 8);
  v128.store(dh, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), NR * 12);
}

// mode: 0 → C = alpha·acc (beta == 0, C not read); 1 → C = alpha·acc + beta·C; 2 → C += alpha·acc
// @ts-ignore: decorator
@inline
function storeRow(c: usize, lo: v128, hi: v128, va: v128, vb: v128, mode: i32): void {
  let r0 = f32x4.mul(lo, va);
  let r1 = f32x4.mul(hi, va);
  if (mode == 1) {
    r0 = f32x4.add(r0, f32x4.mul(v128.load(c), vb));
    r1 = f32x4.add(r1, f32x4.mul(v128.load(c, 16), vb));
  } else if (mode == 2) {
    r0 = f32x4.add(v128.load(c), r0);
    r1 = f32x4.add(v128.load(c, 16), r1);
  }
  v128.store(c, r0);
  v128.store(c, r1, 16);
}

// The MR×NR product of packed strips into the tile buffer, then into C: a full tile with
// alpha, beta and mode, an edge tile (mr × nr) element by element with the same arithmetic.
function kernel4x8(kc: i32, pa: usize, pb: usize, tile: usize, c: usize, ldc: i32, mr: i32, nr: i32,
                   alpha: f32, beta: f32, mode: i32): void {
  multiplyTile(kc, pa, 16, 0, false, pb, tile);
  if (mr == MR && nr == NR) {
    const va = f32x4.splat(alpha);
    const vb = f32x4.splat(beta);
    const ld = <usize>ldc << 2;
    for (let i = 0; i < MR; i++) {
      const t = tile + (<usize>(i * NR) << 2);
      storeRow(c + ld * <usize>i, v128.load(t), v128.load(t, 16), va, vb, mode);
    }
    return;
  }
  for (let i = 0; i < mr; i++) {
    const crow = c + (<usize>(i * ldc) << 2);
    const trow = tile + (<usize>(i * NR) << 2);
    for (let j = 0; j < nr; j++) {
      const cp = crow + (<usize>j << 2);
      const t = load<f32>(trow + (<usize>j << 2));
      if (mode == 0) store<f32>(cp, alpha * t);
      else if (mode == 1) store<f32>(cp, alpha * t + beta * load<f32>(cp));
      else store<f32>(cp, load<f32>(cp) + alpha * t);
    }
  }
}

/** Packs op(B)[p0:p0+kc, j0:j0+nc] into NR-column strips at dst, laid out as packB does. */
export type PackB = (p0: i32, j0: i32, kc: i32, nc: i32, dst: usize) => void;

// The matrix B of the current gemm call (packMatrixB reads them).
let gB: usize = 0;
let gLdb: i32 = 0;
let gTransB: i32 = 0;

function packMatrixB(p0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  packB(gTransB, gB, gLdb, p0, j0, kc, nc, dst);
}

/**
 * C[M×N] = alpha·op(A)·op(B) + beta·C.
 * op(A)[m][k] = transA ? A[k*lda+m] : A[m*lda+k]; op(B)[k][n] = transB ? B[n*ldb+k] : B[k*ldb+n].
 */
export function gemm(transA: i32, transB: i32, M: i32, N: i32, K: i32, alpha: f32,
                     A: usize, lda: i32, B: usize, ldb: i32, beta: f32, C: usize, ldc: i32): void {
  gB = B; gLdb = ldb; gTransB = transB;
  gemmWith(transA, M, N, K, alpha, A, lda, packMatrixB, beta, C, ldc);
}

/**
 * gemm with op(B) given by how to pack it, not where it is: conv.ts's weight gradient packs
 * image patches straight from the padded images (an implicit im2col).
 */
export function gemmWith(transA: i32, M: i32, N: i32, K: i32, alpha: f32, A: usize, lda: i32,
                         packOpB: PackB, beta: f32, C: usize, ldc: i32): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0) {
    for (let m = 0; m < M; m++) {
      const row = C + (<usize>(m * ldc) << 2);
      for (let n = 0; n < N; n++) {
        const p = row + (<usize>n << 2);
        store<f32>(p, beta == 0 ? <f32>0 : beta * load<f32>(p));
      }
    }
    return;
  }
  const pA = gemmScratch;
  const pB = pA + <usize>PACKA_BYTES;
  const tile = pB + <usize>PACKB_BYTES;
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      packOpB(pc, jc, kc, nc, pB);
      const mode = pc > 0 ? 2 : (beta == 0 ? 0 : 1);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min(MC, M - ic);
        packA(transA, A, lda, ic, pc, mc, kc, pA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const pb = pB + (<usize>(jr * kc) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const pa = pA + (<usize>(ir * kc) << 2);
            const c = C + (<usize>((ic + ir) * ldc + jc + jr) << 2);
            kernel4x8(kc, pa, pb, tile, c, ldc, mr, nr, alpha, beta, mode);
          }
        }
      }
    }
  }
}
