// 2-D convolution (NCHW, grouped, strided, padded, dilated) as implicit-im2col GEMMs.
// x [N,C,H,W], w [O, C/G, KH, KW], y/dy [N,O,OH,OW]. Per group g, the patch matrix
// col[k][j] (k = (c·KH+kh)·KW+kw over the group's C/G channels, j = n·OH·OW + oh·OW + ow
// over the WHOLE batch) is never materialised: the GEMM packing routines gather it
// straight from x into the packed panels of gemm.ts's scratch, so each layer is one
// blocked GEMM over the batch (no per-image calls, no col buffer, no re-packing).
//   forward:          y[n,o,pix]  = Σ_k w[o][k] · col[k][j]
//   input gradient:   stride 1: a forward convolution of dy with the flipped, transposed
//                     filters (padding DH·(KH-1)-PH), so no col2im/scatter; other strides:
//                     per-image gemm into the col scratch + col2im (fixed order).
//   weight gradient:  dwᵀ[k][o] = Σ_j col[k][j] · dy[o][j], j over the whole batch.
// Summation order (depends only on shapes): every output element is a sum over its
// reduction index in increasing order, split into fixed blocks of KC = 256 consecutive
// indices; each block is summed in registers from zero, then the blocks are added to the
// output in increasing order. For the weight gradient the reduction index is
// j = n·OH·OW + oh·OW + ow, i.e. the batch is summed in increasing n in fixed 256-element
// chunks of the flattened (n, oh, ow) index — the same for any later split of work.
import { gemm, gemmScratchPtr, packA, kernel4x8, kernel4x8T } from "./gemm";

// Blocking; must match gemm.ts's scratch layout: packA MC·KC, packB KC·NC, tile MR·NR, rows MR·KC.
// @ts-ignore: decorator
@inline const MR: i32 = 4;
// @ts-ignore: decorator
@inline const NR: i32 = 8;
// @ts-ignore: decorator
@inline const KC: i32 = 256;
// @ts-ignore: decorator
@inline const MC: i32 = 128;
// @ts-ignore: decorator
@inline const NC: i32 = 512;

// dxg[c, ih, iw] += col[(c*KH+kh)*KW+kw][oh*OW+ow] (dxg must be zeroed by the caller).
function col2im(col: usize, dxg: usize, Cg: i32, H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                PH: i32, PW: i32, DH: i32, DW: i32, OH: i32, OW: i32): void {
  let src = col;
  for (let c = 0; c < Cg; c++) {
    const xc = dxg + (<usize>(c * H * W) << 2);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const woff = kw * DW - PW;
        let owLo = woff >= 0 ? 0 : (-woff + SW - 1) / SW;
        let owHi = W - woff <= 0 ? 0 : (W - woff + SW - 1) / SW;
        if (owHi > OW) owHi = OW;
        if (owLo > owHi) owLo = owHi;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * SH - PH + kh * DH;
          if (ih >= 0 && ih < H) {
            const xrow = xc + (<usize>(ih * W + woff) << 2);
            if (SW == 1) {
              let ow = owLo;
              for (; ow + 4 <= owHi; ow += 4) {
                const p = xrow + (<usize>ow << 2);
                v128.store(p, f32x4.add(v128.load(p), v128.load(src + (<usize>ow << 2))));
              }
              for (; ow < owHi; ow++) {
                const p = xrow + (<usize>ow << 2);
                store<f32>(p, load<f32>(p) + load<f32>(src + (<usize>ow << 2)));
              }
            } else {
              for (let ow = owLo; ow < owHi; ow++) {
                const p = xrow + (<usize>(ow * SW) << 2);
                store<f32>(p, load<f32>(p) + load<f32>(src + (<usize>ow << 2)));
              }
            }
          }
          src += <usize>OW << 2;
        }
      }
    }
  }
}

// ---- implicit im2col geometry (module globals; kernels run one at a time) ----
// Source tensor for col: gSrc points at channel 0 of the group in image 0; images are
// gImgBytes apart. Input plane gH×gW, kernel gKH×gKW, output grid gOH×gOW, gNtot = N·gOHW.
let gSrc: usize = 0;
let gImgBytes: usize = 0;
let gH: i32 = 0, gW: i32 = 0, gKH: i32 = 0, gKW: i32 = 0;
let gSH: i32 = 1, gSW: i32 = 1, gPH: i32 = 0, gPW: i32 = 0, gDH: i32 = 1, gDW: i32 = 1;
let gOH: i32 = 0, gOW: i32 = 0, gOHW: i32 = 0, gNtot: i32 = 0;
// Destination of the forward-type product: dst[n][m][pix], group channel 0 at gDst.
let gDst: usize = 0;
let gDstImgBytes: usize = 0;
// Flipped-filter packing (input gradient): group filters at gWg, [Og][Cg][KH][KW].
let gCg: i32 = 0;

function setGeom(src: usize, imgBytes: usize, H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                 PH: i32, PW: i32, DH: i32, DW: i32, OH: i32, OW: i32, N: i32): void {
  gSrc = src; gImgBytes = imgBytes; gH = H; gW = W; gKH = KH; gKW = KW;
  gSH = SH; gSW = SW; gPH = PH; gPW = PW; gDH = DH; gDW = DW;
  gOH = OH; gOW = OW; gOHW = OH * OW; gNtot = N * OH * OW;
}

// Pack col[pc:pc+kc][jc:jc+nc] into NR-column strips: dst[s*NR*kc + p*NR + jj].
function packBcol(pc: i32, kc: i32, jc: i32, nc: i32, dst: usize): void {
  const KHW = gKH * gKW;
  const zero = f32x4.splat(0);
  const planeBytes = <usize>(gH * gW) << 2;
  const c0 = pc / KHW, r0 = pc - c0 * KHW, kh0 = r0 / gKW, kw0 = r0 - kh0 * gKW;
  for (let s = 0; s < nc; s += NR) {
    const d = dst + (<usize>(s * kc) << 2);
    const j0 = jc + s;
    const n0 = j0 / gOHW, pix0 = j0 - n0 * gOHW;
    const oh0 = pix0 / gOW, ow0 = pix0 - oh0 * gOW;
    if (ow0 + NR <= gOW && j0 + NR <= gNtot) {
      // 8 consecutive ow of one output row of one image.
      const img = gSrc + <usize>n0 * gImgBytes;
      const ihBase = oh0 * gSH - gPH, iwBase = ow0 * gSW - gPW;
      let c = c0, kh = kh0, kw = kw0;
      let plane = img + <usize>c * planeBytes;
      let dp = d;
      const dend = d + (<usize>(kc * NR) << 2);
      while (dp < dend) {
        const ih = ihBase + kh * gDH;
        const iw = iwBase + kw * gDW;
        if (<u32>ih >= <u32>gH) {
          v128.store(dp, zero);
          v128.store(dp, zero, 16);
        } else {
          const row = plane + (<usize>(ih * gW) << 2);
          if (gSW == 1 && iw >= 0 && iw + NR <= gW) {
            const q = row + (<usize>iw << 2);
            v128.store(dp, v128.load(q));
            v128.store(dp, v128.load(q, 16), 16);
          } else {
            for (let jj = 0; jj < NR; jj++) {
              const xi = iw + jj * gSW;
              store<f32>(dp + (<usize>jj << 2), <u32>xi < <u32>gW ? load<f32>(row + (<usize>xi << 2)) : <f32>0);
            }
          }
        }
        dp += NR << 2;
        if (++kw == gKW) {
          kw = 0;
          if (++kh == gKH) { kh = 0; c++; plane += planeBytes; }
        }
      }
    } else {
      // General strip: column by column (crosses a row/image boundary or the end).
      for (let jj = 0; jj < NR; jj++) {
        const j = j0 + jj;
        let dp = d + (<usize>jj << 2);
        const dend = dp + (<usize>(kc * NR) << 2);
        if (j >= gNtot) {
          for (; dp < dend; dp += NR << 2) store<f32>(dp, 0);
          continue;
        }
        const n = j / gOHW, pix = j - n * gOHW;
        const oh = pix / gOW, ow = pix - oh * gOW;
        const ihBase = oh * gSH - gPH, iwBase = ow * gSW - gPW;
        let c = c0, kh = kh0, kw = kw0;
        let plane = gSrc + <usize>n * gImgBytes + <usize>c * planeBytes;
        for (; dp < dend; dp += NR << 2) {
          const ih = ihBase + kh * gDH;
          const iw = iwBase + kw * gDW;
          let v: f32 = 0;
          if (<u32>ih < <u32>gH && <u32>iw < <u32>gW) v = load<f32>(plane + (<usize>(ih * gW + iw) << 2));
          store<f32>(dp, v);
          if (++kw == gKW) {
            kw = 0;
            if (++kh == gKH) { kh = 0; c++; plane += planeBytes; }
          }
        }
      }
    }
  }
}

// Pack the flipped, transposed filters A'[m = c][k = (o·KH+kh)·KW+kw] = wg[o][c][KH-1-kh][KW-1-kw]
// for rows ic:ic+mc (zero rows past M) and k in pc:pc+kc into MR-row strips.
function packAflip(wg: usize, M: i32, ic: i32, pc: i32, mc: i32, kc: i32, dst: usize): void {
  const KHW = gKH * gKW;
  const o0 = pc / KHW, r0 = pc - o0 * KHW, kh0 = r0 / gKW, kw0 = r0 - kh0 * gKW;
  for (let s = 0; s < mc; s += MR) {
    const d = dst + (<usize>(s * kc) << 2);
    let o = o0, kh = kh0, kw = kw0;
    for (let p = 0; p < kc; p++) {
      const base = (o * gCg) * KHW + (gKH - 1 - kh) * gKW + (gKW - 1 - kw);
      const dp = d + (<usize>(p * MR) << 2);
      for (let i = 0; i < MR; i++) {
        const m = ic + s + i;
        store<f32>(dp + (<usize>i << 2), m < M ? load<f32>(wg + (<usize>(base + m * KHW) << 2)) : <f32>0);
      }
      if (++kw == gKW) {
        kw = 0;
        if (++kh == gKH) { kh = 0; o++; }
      }
    }
  }
}

// dst[n][m][pix] = Σ_k A[m][k]·col[k][j] for m < M, all j (see the header for the order).
// A is the group's filter matrix (flip == 0: A[m][k] = A[m*K + k]) or the flipped,
// transposed filters (flip != 0, see packAflip).
function convGemm(A: usize, flip: bool, M: i32, K: i32): void {
  const sp = gemmScratchPtr();
  const pA = sp;
  const pB = pA + (<usize>(MC * KC) << 2);
  const tile = pB + (<usize>(KC * NC) << 2);
  const Ntot = gNtot, OHW = gOHW;
  for (let jc = 0; jc < Ntot; jc += NC) {
    const nc = min(NC, Ntot - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      packBcol(pc, kc, jc, nc, pB);
      const mode = pc > 0 ? 2 : 0;
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min(MC, M - ic);
        if (flip) packAflip(A, M, ic, pc, mc, kc, pA);
        else packA(0, A, K, ic, pc, mc, kc, pA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const pb = pB + (<usize>(jr * kc) << 2);
          const j0 = jc + jr;
          const n0 = j0 / OHW, pix0 = j0 - n0 * OHW;
          const contiguous = nr == NR && pix0 + NR <= OHW;
          const cimg = gDst + <usize>n0 * gDstImgBytes + (<usize>pix0 << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const pa = pA + (<usize>(ir * kc) << 2);
            const m0 = ic + ir;
            if (contiguous && mr == MR) {
              kernel4x8(kc, pa, pb, cimg + (<usize>(m0 * OHW) << 2), OHW, 1, 0, mode);
            } else {
              kernel4x8(kc, pa, pb, tile, NR, 1, 0, 0);
              for (let jj = 0; jj < nr; jj++) {
                const j = j0 + jj;
                const n = j / OHW, pix = j - n * OHW;
                const col = gDst + <usize>n * gDstImgBytes + (<usize>pix << 2);
                for (let i = 0; i < mr; i++) {
                  const cp = col + (<usize>((m0 + i) * OHW) << 2);
                  const t = load<f32>(tile + (<usize>(i * NR + jj) << 2));
                  store<f32>(cp, mode == 0 ? t : load<f32>(cp) + t);
                }
              }
            }
          }
        }
      }
    }
  }
}

// Fill out[0:kc] with col row k, columns j in pc:pc+kc.
function fillColRow(k: i32, pc: i32, kc: i32, out: usize): void {
  const KHW = gKH * gKW;
  const c = k / KHW, r = k - c * KHW, kh = r / gKW, kw = r - kh * gKW;
  const planeOff = <usize>(c * gH * gW) << 2;
  const woff = kw * gDW - gPW;
  // valid ow (stride 1 case): 0 <= ow + woff < W
  const owLo = max(0, -woff), owHi = min(gOW, gW - woff);
  let j = pc;
  const jEnd = pc + kc;
  let o = out;
  while (j < jEnd) {
    const n = j / gOHW, pix = j - n * gOHW;
    const oh = pix / gOW, ow = pix - oh * gOW;
    const owEnd = min(gOW, ow + (jEnd - j));
    const len = owEnd - ow;
    const ih = oh * gSH - gPH + kh * gDH;
    if (<u32>ih >= <u32>gH) {
      memory.fill(o, 0, <usize>len << 2);
    } else {
      const row = gSrc + <usize>n * gImgBytes + planeOff + (<usize>(ih * gW) << 2);
      if (gSW == 1) {
        const a = max(ow, owLo), b = max(a, min(owEnd, owHi));
        if (a > ow) memory.fill(o, 0, <usize>(a - ow) << 2);
        if (b > a) memory.copy(o + (<usize>(a - ow) << 2), row + (<usize>(a + woff) << 2), <usize>(b - a) << 2);
        if (owEnd > b) memory.fill(o + (<usize>(b - ow) << 2), 0, <usize>(owEnd - b) << 2);
      } else {
        for (let q = ow; q < owEnd; q++) {
          const xi = q * gSW + woff;
          store<f32>(o + (<usize>(q - ow) << 2), <u32>xi < <u32>gW ? load<f32>(row + (<usize>xi << 2)) : <f32>0);
        }
      }
    }
    o += <usize>len << 2;
    j += len;
  }
}

// Pack col[ic:ic+mc][pc:pc+kc] (rows k, zero rows past M) into MR-row strips, via MR
// row buffers and 4×4 transposes.
function packAcol(M: i32, ic: i32, pc: i32, mc: i32, kc: i32, dst: usize, rows: usize): void {
  const rs = <usize>KC << 2;
  for (let s = 0; s < mc; s += MR) {
    for (let i = 0; i < MR; i++) {
      const k = ic + s + i;
      if (k < M) fillColRow(k, pc, kc, rows + rs * <usize>i);
      else memory.fill(rows + rs * <usize>i, 0, <usize>kc << 2);
    }
    const d = dst + (<usize>(s * kc) << 2);
    let p = 0;
    for (; p + 4 <= kc; p += 4) {
      const o = <usize>p << 2;
      const a0 = v128.load(rows + o);
      const a1 = v128.load(rows + rs + o);
      const a2 = v128.load(rows + rs * 2 + o);
      const a3 = v128.load(rows + rs * 3 + o);
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
      for (let i = 0; i < MR; i++) store<f32>(dp + (<usize>i << 2), load<f32>(rows + rs * <usize>i + o));
    }
  }
}

// Pack dyᵀ[j][o] for j in pc:pc+kc, o in oc:oc+nc (zero columns past Og) into NR-column
// strips: dst[s*NR*kc + p*NR + jj] = dyg[n][oc+s+jj][pix], j = n·OHW + pix.
function packBdy(dyg: usize, dyImgBytes: usize, Og: i32, oc: i32, nc: i32, pc: i32, kc: i32, dst: usize): void {
  const OHW = gOHW;
  const step = <usize>OHW << 2;
  for (let s = 0; s < nc; s += NR) {
    const nr = min(NR, nc - s);
    const d = dst + (<usize>(s * kc) << 2);
    let j = pc;
    const jEnd = pc + kc;
    while (j < jEnd) {
      const n = j / OHW, pix = j - n * OHW;
      const len = min(OHW - pix, jEnd - j);
      const r0 = dyg + <usize>n * dyImgBytes + (<usize>((oc + s) * OHW + pix) << 2);
      let dp = d + (<usize>((j - pc) * NR) << 2);
      let q = 0;
      if (nr == NR) {
        for (; q + 4 <= len; q += 4) {
          const o = <usize>q << 2;
          for (let h = 0; h < 2; h++) {
            const rb = r0 + step * <usize>(h * 4) + o;
            const a0 = v128.load(rb);
            const a1 = v128.load(rb + step);
            const a2 = v128.load(rb + step * 2);
            const a3 = v128.load(rb + step * 3);
            const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
            const t1 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
            const t2 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
            const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
            const dh = dp + (<usize>h << 4);
            v128.store(dh, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
            v128.store(dh, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 32);
            v128.store(dh, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 64);
            v128.store(dh, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 96);
          }
          dp += NR * 4 << 2;
        }
      }
      for (; q < len; q++) {
        const src = r0 + (<usize>q << 2);
        for (let jj = 0; jj < NR; jj++) {
          store<f32>(dp + (<usize>jj << 2), jj < nr ? load<f32>(src + step * <usize>jj) : <f32>0);
        }
        dp += NR << 2;
      }
      j += len;
    }
  }
}

/** y = conv2d(x, w). col: scratch of at least (C/G)·KH·KW·OH·OW floats (unused here). */
export function conv2d_forward(x: usize, w: usize, y: usize, col: usize,
                               N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                               SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                               OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  if (N <= 0 || OHW <= 0 || Og <= 0) return;
  if (Kc <= 0) { memory.fill(y, 0, <usize>N * <usize>O * <usize>OHW << 2); return; }
  for (let g = 0; g < G; g++) {
    setGeom(x + (<usize>(g * Cg * HW) << 2), <usize>(C * HW) << 2, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, N);
    gDst = y + (<usize>(g * Og * OHW) << 2);
    gDstImgBytes = <usize>(O * OHW) << 2;
    convGemm(w + (<usize>(g * Og * Kc) << 2), false, Og, Kc);
  }
}

/** dx = conv2d input gradient. col: scratch as for the forward (used for stride != 1). */
export function conv2d_backward_input(dy: usize, w: usize, dx: usize, col: usize,
                                      N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                      SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                      OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  if (N <= 0 || HW <= 0 || Cg <= 0) return;
  if (SH == 1 && SW == 1 && OH == H + 2 * PH - DH * (KH - 1) && OW == W + 2 * PW - DW * (KW - 1)) {
    // Transposed convolution: dx[n,c] = Σ_{o,kh,kw} dy[n,o, ih+PH-kh·DH, iw+PW-kw·DW]·w[o,c,kh,kw],
    // i.e. a forward conv of dy (O channels, OH×OW) with filters w'[c][o][KH-1-kh][KW-1-kw],
    // padding DH·(KH-1)-PH, output H×W. Reduction index k' = (o·KH+kh')·KW+kw'.
    if (Og <= 0 || KH <= 0 || KW <= 0) { memory.fill(dx, 0, <usize>N * <usize>C * <usize>HW << 2); return; }
    for (let g = 0; g < G; g++) {
      setGeom(dy + (<usize>(g * Og * OHW) << 2), <usize>(O * OHW) << 2, OH, OW, KH, KW, 1, 1,
              DH * (KH - 1) - PH, DW * (KW - 1) - PW, DH, DW, H, W, N);
      gDst = dx + (<usize>(g * Cg * HW) << 2);
      gDstImgBytes = <usize>(C * HW) << 2;
      gCg = Cg;
      convGemm(w + (<usize>(g * Og * Kc) << 2), true, Cg, Og * KH * KW);
    }
    return;
  }
  // Strided: per image and group, col = wᵀ·dy (gemm) then col2im-accumulate, in increasing n.
  memory.fill(dx, 0, <usize>N * <usize>C * <usize>HW << 2);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const dxg = dx + (<usize>((n * C + g * Cg) * HW) << 2);
      const wg = w + (<usize>(g * Og * Kc) << 2);
      const dyg = dy + (<usize>((n * O + g * Og) * OHW) << 2);
      gemm(1, 0, Kc, OHW, Og, 1, wg, Kc, dyg, OHW, 0, col, OHW);
      col2im(col, dxg, Cg, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
    }
  }
}

/**
 * dw = conv2d weight gradient: dw[o][k] = Σ_j dy[o][j]·col[k][j] over j = n·OH·OW + oh·OW + ow
 * (the whole batch), in increasing j, in fixed blocks of KC = 256 consecutive j whose partial
 * sums are added to dw in increasing order. col: unused.
 */
export function conv2d_backward_weight(dy: usize, x: usize, dw: usize, col: usize,
                                       N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                       SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                       OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const Ntot = N * OHW;
  if (Ntot <= 0) {
    memory.fill(dw, 0, <usize>O * <usize>Kc << 2);
    return;
  }
  const sp = gemmScratchPtr();
  const pA = sp;
  const pB = pA + (<usize>(MC * KC) << 2);
  const tile = pB + (<usize>(KC * NC) << 2);
  const rows = tile + (<usize>(MR * NR) << 2);
  const dyImg = <usize>(O * OHW) << 2;
  for (let g = 0; g < G; g++) {
    setGeom(x + (<usize>(g * Cg * HW) << 2), <usize>(C * HW) << 2, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, N);
    const dyg = dy + (<usize>(g * Og * OHW) << 2);
    const dwg = dw + (<usize>(g * Og * Kc) << 2);
    // dwᵀ[k][o] = Σ_j col[k][j]·dyᵀ[j][o]: M' = Kc (rows of col), N' = Og, reduction over j.
    for (let oc = 0; oc < Og; oc += NC) {
      const nc = min(NC, Og - oc);
      for (let pc = 0; pc < Ntot; pc += KC) {
        const kc = min(KC, Ntot - pc);
        packBdy(dyg, dyImg, Og, oc, nc, pc, kc, pB);
        const mode = pc > 0 ? 2 : 0;
        for (let ic = 0; ic < Kc; ic += MC) {
          const mc = min(MC, Kc - ic);
          packAcol(Kc, ic, pc, mc, kc, pA, rows);
          for (let jr = 0; jr < nc; jr += NR) {
            const nr = min(NR, nc - jr);
            const pb = pB + (<usize>(jr * kc) << 2);
            const o0 = oc + jr;
            for (let ir = 0; ir < mc; ir += MR) {
              const mr = min(MR, mc - ir);
              const pa = pA + (<usize>(ir * kc) << 2);
              const k0 = ic + ir;
              if (mr == MR && nr == NR) {
                kernel4x8T(kc, pa, pb, dwg + (<usize>(o0 * Kc + k0) << 2), Kc, mode);
              } else {
                kernel4x8(kc, pa, pb, tile, NR, 1, 0, 0);
                for (let jj = 0; jj < nr; jj++) {
                  for (let i = 0; i < mr; i++) {
                    const cp = dwg + (<usize>((o0 + jj) * Kc + k0 + i) << 2);
                    const t = load<f32>(tile + (<usize>(i * NR + jj) << 2));
                    store<f32>(cp, mode == 0 ? t : load<f32>(cp) + t);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
