// 2-D convolution (NCHW, grouped, strided, padded, dilated).
// x [N,C,H,W], w [O, C/G, KH, KW], y/dy [N,O,OH,OW].
//   forward: when O/G % 8 == 0 and the zero-padded input planes fit in the col scratch, a
//     direct kernel: per image a zero-padded copy (split into stride phases) and a table of
//     tap offsets; 4 adjacent output pixels (fewer at a row's end) × 8 output channels per
//     register tile; filters packed once per call, or once per chunk of images when they do
//     not fit the pack buffer. Otherwise, per image and group, im2col + gemm.
//   input gradient: stride 1 (same conditions with C/G): the direct kernel applied to dy with
//     the flipped, transposed filters (padding DH·(KH-1)-PH); otherwise per image and group
//     gemm (wᵀ·dy) into the col scratch + col2im.
//   weight gradient: a gemm dy·colᵀ whose im2col matrix col is never written: its packing
//     reads the zero-padded images (laid out as for the direct path) through the tap-offset
//     table; one image per gemm, or, for planes smaller than KC pixels, KC/(OH·OW) images
//     side by side; beta = 1 after the first gemm. 1×1 stride-1 layers use x itself.
// Summation order (depends only on shapes): forward / input-gradient elements are sums over
// the reduction index k (k = (c·KH+kh)·KW+kw, resp. (o·KH+kh')·KW+kw') in increasing order,
// in fixed KC = 256 blocks (each block summed from zero in registers, blocks added to the
// output in increasing order); col2im accumulates in increasing (c, kh, kw, oh, ow) order.
// The weight gradient sums over (n, oh·OW+ow) in increasing order, in fixed KC blocks (each
// gemm's terms, then the gemms added to dw in increasing n).
// Threads (src/backend/cpu/backend.ts): forward and input gradient split by images (pointer offsets,
// each image is independent); the weight gradient by input-channel blocks [c0, c1)
// (conv2d_backward_weight's range arguments: padded copies of those channels only, and the
// gemm on the matching columns of dw), so every element keeps the 1-thread summation order.
import { gemm, gemmScratchPtr, gemmWith, packB, storeStripRows } from "./gemm";
import { directTile, KC, MC, MR, NC, NR } from "./tile";
import { winogradFilterFloats, winogradFits, winogradScratchFloats, winogradWeightScratchFloats } from "./winograd";

// Images padded at once on the direct path when the filters do not fit the pack buffer.
// @ts-ignore: decorator
@inline const IMG_CHUNK: i32 = 16;

// Build col[(c*KH+kh)*KW+kw][oh*OW+ow] for one image/group (xg points at channel 0 of the group).
function im2col(xg: usize, col: usize, Cg: i32, H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                PH: i32, PW: i32, DH: i32, DW: i32, OH: i32, OW: i32): void {
  let dst = col;
  for (let c = 0; c < Cg; c++) {
    const xc = xg + (<usize>(c * H * W) << 2);
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        const woff = kw * DW - PW;
        // valid ow: 0 <= ow*SW + woff < W
        let owLo = woff >= 0 ? 0 : (-woff + SW - 1) / SW;
        let owHi = W - woff <= 0 ? 0 : (W - woff + SW - 1) / SW;
        if (owHi > OW) owHi = OW;
        if (owLo > owHi) owLo = owHi;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * SH - PH + kh * DH;
          if (ih < 0 || ih >= H) {
            memory.fill(dst, 0, <usize>OW << 2);
          } else {
            if (owLo > 0) memory.fill(dst, 0, <usize>owLo << 2);
            const xrow = xc + (<usize>(ih * W + woff) << 2);
            if (SW == 1) {
              memory.copy(dst + (<usize>owLo << 2), xrow + (<usize>owLo << 2), <usize>(owHi - owLo) << 2);
            } else {
              for (let ow = owLo; ow < owHi; ow++) {
                store<f32>(dst + (<usize>ow << 2), load<f32>(xrow + (<usize>(ow * SW) << 2)));
              }
            }
            if (owHi < OW) memory.fill(dst + (<usize>owHi << 2), 0, <usize>(OW - owHi) << 2);
          }
          dst += <usize>OW << 2;
        }
      }
    }
  }
}

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

// ---- direct-path geometry (module globals; kernels run one at a time) ----
// Source planes: gSrc points at channel 0 of the group (or channel block) in image 0; images
// are gImgBytes apart. Input plane gH×gW, kernel gKH×gKW, output grid gOH×gOW.
let gSrc: usize = 0;
let gImgBytes: usize = 0;
let gH: i32 = 0, gW: i32 = 0, gKH: i32 = 0, gKW: i32 = 0;
let gSH: i32 = 1, gSW: i32 = 1, gPH: i32 = 0, gPW: i32 = 0, gDH: i32 = 1, gDW: i32 = 1;
let gOH: i32 = 0, gOW: i32 = 0, gOHW: i32 = 0;
// Destination of the forward-type product: dst[n][m][pix], group channel 0 at gDst.
let gDst: usize = 0;
let gDstImgBytes: usize = 0;
// Flipped-filter packing (input gradient): Cg of the group's [Og][Cg][KH][KW] filters.
let gCg: i32 = 0;

function setGeom(src: usize, imgBytes: usize, H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                 PH: i32, PW: i32, DH: i32, DW: i32, OH: i32, OW: i32): void {
  gSrc = src; gImgBytes = imgBytes; gH = H; gW = W; gKH = KH; gKW = KW;
  gSH = SH; gSW = SW; gPH = PH; gPW = PW; gDH = DH; gDW = DW;
  gOH = OH; gOW = OW; gOHW = OH * OW;
}

// ---- direct convolution (zero-padded copy + offset table; no im2col) ----
// Per image: xp = zero-padded copy of the source planes (in the col scratch; split into
// stride phases, see paddedFloats), off[k] = byte offset of tap k = (c·KH+kh)·KW+kw in xp.
// A tile of 4 consecutive output pixels (one row)
// × 8 output channels is a register-blocked product whose "A" values are splat-loaded straight
// from xp at base(pixel) + off[k]; the filters are packed once into NR-column strips per
// KC-block of k. Same reduction order as the GEMM path (k increasing, KC blocks).

// Filters as B[k][m] (k-major NR-strips of m), for k in pc:pc+kc, m in 0:M (zero past M).
// flip == false: B[k][m] = wg[m*K + k]; flip: B[k'=(o·KH+kh)·KW+kw][c] = wg[o][c][KH-1-kh][KW-1-kw].
function packWeights(wg: usize, flip: bool, M: i32, K: i32, pc: i32, kc: i32, dst: usize): void {
  if (!flip) { packB(1, wg, K, pc, 0, kc, M, dst); return; }
  const KHW = gKH * gKW;
  for (let s = 0; s < M; s += NR) {
    const d = dst + (<usize>(s * kc) << 2);
    let o = pc / KHW;
    const r0 = pc - o * KHW;
    let kh = r0 / gKW, kw = r0 - kh * gKW;
    for (let p = 0; p < kc; p++) {
      const base = (o * gCg) * KHW + (gKH - 1 - kh) * gKW + (gKW - 1 - kw);
      const dp = d + (<usize>(p * NR) << 2);
      for (let jj = 0; jj < NR; jj++) {
        const m = s + jj;
        store<f32>(dp + (<usize>jj << 2), m < M ? load<f32>(wg + (<usize>(base + m * KHW) << 2)) : <f32>0);
      }
      if (++kw == gKW) { kw = 0; if (++kh == gKH) { kh = 0; o++; } }
    }
  }
}

// Floats of one image's source planes as the direct path lays them out: zero-padded, and for
// a stride S split into S_H·S_W phase planes of ⌈Hp/S_H⌉×⌈Wp/S_W⌉ (phase (a, b) holds the padded
// rows a, a+S_H, … and columns b, b+S_W, …), so that adjacent output pixels read adjacent
// floats at every stride. Stride 1 is one phase: the padded plane itself.
function paddedFloats(Cin: i32, H: i32, W: i32, PH: i32, PW: i32, SH: i32, SW: i32): i64 {
  const Hq = (H + 2 * PH + SH - 1) / SH, Wq = (W + 2 * PW + SW - 1) / SW;
  return <i64>Cin * <i64>(SH * SW) * <i64>Hq * <i64>Wq;
}

// Floats after the padded images that a row's last, short tile may read (its dropped pixels).
// @ts-ignore: decorator
@inline const SLACK: i32 = MR;

// Can the direct path run? Needs the padded planes (and the slack) to fit in the col scratch.
function directFits(Cin: i32, H: i32, W: i32, PH: i32, PW: i32, SH: i32, SW: i32, colFloats: i32): bool {
  if (PH < 0 || PW < 0) return false;
  return paddedFloats(Cin, H, W, PH, PW, SH, SW) + SLACK <= <i64>colFloats;
}

// Do the packed filters of the whole reduction fit the pack buffer at once?
function filtersFit(M: i32, K: i32): bool {
  return <i64>K * <i64>((M + NR - 1) & ~(NR - 1)) <= <i64>(KC * NC);
}

// dst[n][m][pix] = Σ_k A[m][k]·col[k][j] via the direct path (geometry in the g* globals:
// source = gSrc planes, Cin channels; PH/PW >= 0). xp: scratch of scratchFloats floats,
// at least paddedFloats (one zero-padded image).
// When the filters fit the pack buffer they are packed once per call and the images go
// one at a time; otherwise each KC block of filters is packed once per chunk of as many
// padded images as the scratch holds, not once per image (deep layers with small planes
// were spending more time packing than multiplying). Either way every output element sums
// its KC blocks in increasing order, so the chunking never changes a bit.
function directConv(wg: usize, flip: bool, M: i32, K: i32, Cin: i32, N: i32, xp: usize, scratchFloats: i32): void {
  const sp = gemmScratchPtr();
  const offs = sp; // packA area: up to MC·KC ints of tap offsets
  const pB = sp + (<usize>(MC * KC) << 2);
  const tile = pB + (<usize>(KC * NC) << 2);
  const Hq = (gH + 2 * gPH + gSH - 1) / gSH, Wq = (gW + 2 * gPW + gSW - 1) / gSW;
  const planeFloats = <i32>paddedFloats(Cin, gH, gW, gPH, gPW, gSH, gSW);
  const planeBytes = <usize>planeFloats << 2;
  const OHW = gOHW;
  const Mp = (M + NR - 1) & ~(NR - 1);
  const wFit = filtersFit(M, K);
  if (K > MC * KC || M > NC) return; // the callers check (forwardDirect, backwardInputDirect)
  const chunk = wFit ? 1 : max(1, min(N, (scratchFloats - SLACK) / planeFloats));
  tapOffsets(offs, K, Hq, Wq);
  if (wFit) {
    for (let pc = 0; pc < K; pc += KC) packWeights(wg, flip, M, K, pc, min(KC, K - pc), pB + (<usize>(pc * Mp) << 2));
  }
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const nc = min(chunk, N - n0);
    for (let i = 0; i < nc; i++) padImage(gSrc + <usize>(n0 + i) * gImgBytes, xp + <usize>i * planeBytes, Cin, Hq, Wq);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = min(KC, K - pc);
      let wb = pB + (<usize>(pc * Mp) << 2);
      if (!wFit) { wb = pB; packWeights(wg, flip, M, K, pc, kc, pB); }
      const mode = pc > 0 ? 2 : 0;
      const ob = offs + (<usize>pc << 2);
      for (let i = 0; i < nc; i++) {
        const ximg = xp + <usize>i * planeBytes;
        const dimg = gDst + <usize>(n0 + i) * gDstImgBytes;
        for (let oh = 0; oh < gOH; oh++) {
          const qrow = ximg + (<usize>(oh * Wq) << 2);
          const crow = dimg + (<usize>(oh * gOW) << 2);
          for (let ow = 0; ow < gOW; ow += 4) {
            const q = qrow + (<usize>ow << 2);
            const cpix = crow + (<usize>ow << 2);
            for (let jr = 0; jr < M; jr += NR) {
              directTile(kc, ob, q, wb + (<usize>(jr * kc) << 2), cpix + (<usize>(jr * OHW) << 2), OHW, mode,
                         min(MR, gOW - ow), min(NR, M - jr), tile);
            }
          }
        }
      }
    }
  }
}

// Byte offsets of the K taps k = (c·KH+kh)·KW+kw in a padded image (phase planes Hq×Wq): tap
// (c, kh, kw) reads padded row oh·SH + kh·DH, that is phase row (kh·DH) % SH shifted by
// (kh·DH) / SH rows (columns alike), of channel c.
function tapOffsets(offs: usize, K: i32, Hq: i32, Wq: i32): void {
  const KHW = gKH * gKW, HWq = Hq * Wq;
  for (let k = 0; k < K; k++) {
    const c = k / KHW, r = k - c * KHW, kh = r / gKW, kw = r - kh * gKW;
    const dh = kh * gDH, dw = kw * gDW;
    const phase = (c * gSH + dh % gSH) * gSW + dw % gSW;
    store<i32>(offs + (<usize>k << 2), (phase * HWq + (dh / gSH) * Wq + dw / gSW) << 2);
  }
}

// One image's Cin source planes (gH×gW) laid out for the direct path: zero-padded by gPH/gPW,
// split into gSH·gSW phase planes of Hq×Wq each (see paddedFloats). A strided layer's phase
// rows are written a row at a time: zeros, then the columns that fall inside the source (every
// gSW-th float, four at a time by shuffles where gSW is 2), then zeros; a phase that no tap
// reads (a 1×1 kernel's only tap is phase (0, 0)) is skipped. (Element by element, with a
// bounds test on each and every phase written, this layout cost more than the convolutions
// that read it: 17.6 ms of a ResNet-20 step against 11.0 for the direct kernels.)
function padImage(src: usize, xp: usize, Cin: i32, Hq: i32, Wq: i32): void {
  if (gSH == 1 && gSW == 1) {
    padPlanes(src, xp, Cin, Hq, Wq);
    return;
  }
  let dst = xp;
  for (let c = 0; c < Cin; c++) {
    const xc = src + (<usize>(c * gH * gW) << 2);
    for (let a = 0; a < gSH; a++) {
      for (let b = 0; b < gSW; b++) {
        if (!phaseRead(a, gKH, gDH, gSH) || !phaseRead(b, gKW, gDW, gSW)) {
          dst += <usize>(Hq * Wq) << 2;
          continue;
        }
        // phase columns j whose source column w = j·gSW + b − gPW lies in [0, gW)
        const jLo = min(Wq, (gPW - b + gSW - 1) / gSW);
        const last = gW - 1 + gPW - b; // j·gSW ≤ last (a negative one: no column; / truncates)
        const jHi = last < 0 ? jLo : max(jLo, min(Wq, last / gSW + 1));
        for (let i = 0; i < Hq; i++, dst += <usize>Wq << 2) {
          const h = i * gSH + a - gPH;
          if (h < 0 || h >= gH) {
            memory.fill(dst, 0, <usize>Wq << 2);
            continue;
          }
          for (let j = 0; j < jLo; j++) store<f32>(dst + (<usize>j << 2), 0); // a column or two: no memory.fill call
          stridedRow(dst, xc + (<usize>(h * gW + b - gPW) << 2), jLo, jHi);
          for (let j = jHi; j < Wq; j++) store<f32>(dst + (<usize>j << 2), 0);
        }
      }
    }
  }
}

// Does a tap of a kernel of `taps` taps `dilation` apart read phase p of stride `stride`?
// @ts-ignore: decorator
@inline
function phaseRead(p: i32, taps: i32, dilation: i32, stride: i32): bool {
  for (let t = 0; t < taps; t++) if ((t * dilation) % stride == p) return true;
  return false;
}

// dst[j] = row[j·gSW] for j in [jLo, jHi): `row` points at the source column of j = 0 (which may
// lie before the row; only the columns of [jLo, jHi) are read). Stride 2: four at a time from
// two loads and a shuffle of their even lanes, while all eight floats loaded lie in the range.
// @ts-ignore: decorator
@inline
function stridedRow(dst: usize, row: usize, jLo: i32, jHi: i32): void {
  let j = jLo;
  if (gSW == 2) {
    for (; 2 * j + 8 <= 2 * jHi - 1; j += 4) {
      const p = row + (<usize>(2 * j) << 2);
      v128.store(dst + (<usize>j << 2), v128.shuffle<f32>(v128.load(p), v128.load(p, 16), 0, 2, 4, 6));
    }
  }
  for (; j < jHi; j++) store<f32>(dst + (<usize>j << 2), load<f32>(row + (<usize>(j * gSW) << 2)));
}

// Stride 1: the zero-padded planes, Hp×Wp each, row by row.
function padPlanes(src: usize, xp: usize, Cin: i32, Hp: i32, Wp: i32): void {
  const HWp = Hp * Wp;
  if (gPH == 0 && gPW == 0) {
    memory.copy(xp, src, <usize>(Cin * gH * gW) << 2);
    return;
  }
  for (let c = 0; c < Cin; c++) {
    const xc = xp + (<usize>(c * HWp) << 2);
    memory.fill(xc, 0, <usize>(gPH * Wp) << 2);
    for (let h = 0; h < gH; h++) {
      const row = xc + (<usize>((h + gPH) * Wp) << 2);
      if (gPW > 0) memory.fill(row, 0, <usize>gPW << 2);
      memory.copy(row + (<usize>gPW << 2), src + (<usize>((c * gH + h) * gW) << 2), <usize>gW << 2);
      if (gPW > 0) memory.fill(row + (<usize>(gPW + gW) << 2), 0, <usize>gPW << 2);
    }
    memory.fill(xc + (<usize>((gPH + gH) * Wp) << 2), 0, <usize>(gPH * Wp) << 2);
  }
}

// @ts-ignore: decorator
@inline
function isPointwise(H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, OH: i32, OW: i32): bool {
  return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W;
}

// Does the forward (resp. input gradient) take the direct path? (See the top of the file.)
function forwardDirect(N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                       PH: i32, PW: i32, G: i32, OH: i32, OW: i32): bool {
  const Cg = C / G, Og = O / G, Kc = Cg * KH * KW, OHW = OH * OW;
  return N > 0 && OHW > 0 && Og > 0 && Kc > 0 && !isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW) &&
    (Og & 7) == 0 && Og <= NC && Kc <= MC * KC && directFits(Cg, H, W, PH, PW, SH, SW, Kc * OHW);
}
function backwardInputDirect(N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                             PH: i32, PW: i32, DH: i32, DW: i32, G: i32, OH: i32, OW: i32): bool {
  const Cg = C / G, Og = O / G, Kt = Og * KH * KW;
  return N > 0 && H * W > 0 && Cg > 0 && Kt > 0 && !isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW) &&
    SH == 1 && SW == 1 && OH == H + 2 * PH - DH * (KH - 1) && OW == W + 2 * PW - DW * (KW - 1) &&
    (Cg & 7) == 0 && Cg <= NC && Kt <= MC * KC &&
    directFits(Og, OH, OW, DH * (KH - 1) - PH, DW * (KW - 1) - PW, 1, 1, Cg * KH * KW * OH * OW);
}

/**
 * Floats of col scratch a convolution kernel needs (kind 0 forward, 1 input gradient, 2 weight
 * gradient, 3 / 4 / 5 the Winograd forward / input gradient / weight gradient of winograd.ts,
 * 6 / 7 the transformed filters (winograd_filters) of the Winograd forward / input gradient, one
 * buffer per call, not per thread; -1 where Winograd does not apply; N = the images of one call): on the direct path one zero-padded image, or up to
 * IMG_CHUNK when the filters do not fit the pack buffer; otherwise the im2col buffer of one
 * image and group (none for 1×1 stride 1); for the weight gradient, the padded images, tap
 * offsets and side-by-side dy of imagesPerGemm images.
 * The caller sizes the scratch with this and the kernels read the same figure back.
 */
export function conv_scratch_floats(kind: i32, N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                    SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                    OH: i32, OW: i32): i32 {
  if (kind >= 3) {
    if (!winogradFits(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW)) return -1;
    if (kind >= 6) return winogradFilterFloats(kind == 7, C, O);
    return kind == 5 ? winogradWeightScratchFloats(C, H, W, O) : winogradScratchFloats(kind == 4, C, H, W, O);
  }
  const Cg = C / G, Og = O / G;
  const pointwise = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  const col = pointwise ? 0 : Cg * KH * KW * OH * OW;
  if (kind == 0) {
    if (!forwardDirect(N, C, H, W, O, KH, KW, SH, SW, PH, PW, G, OH, OW)) return col;
    const images = filtersFit(Og, Cg * KH * KW) ? 1 : min(N, IMG_CHUNK);
    return images * <i32>paddedFloats(Cg, H, W, PH, PW, SH, SW) + SLACK;
  }
  if (kind == 1) {
    if (!backwardInputDirect(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW)) return col;
    const images = filtersFit(Cg, Og * KH * KW) ? 1 : min(N, IMG_CHUNK);
    return images * <i32>paddedFloats(Og, OH, OW, DH * (KH - 1) - PH, DW * (KW - 1) - PW, 1, 1) + SLACK;
  }
  // the weight gradient's padded images, tap offsets and side-by-side dy (none for 1×1 stride 1)
  const nb = imagesPerGemm(N, OH * OW);
  if (pointwise && nb == 1) return 0;
  return nb * <i32>paddedFloats(Cg, H, W, PH, PW, SH, SW) + Cg * KH * KW + (nb > 1 ? Og * nb * OH * OW : 0);
}

/** y = conv2d(x, w). col: scratch of conv_scratch_floats(0, …) floats. */
export function conv2d_forward(x: usize, w: usize, y: usize, col: usize,
                               N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                               SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                               OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  if (forwardDirect(N, C, H, W, O, KH, KW, SH, SW, PH, PW, G, OH, OW)) {
    const scratch = conv_scratch_floats(0, N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW);
    for (let g = 0; g < G; g++) {
      setGeom(x + (<usize>(g * Cg * HW) << 2), <usize>(C * HW) << 2, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
      gDst = y + (<usize>(g * Og * OHW) << 2);
      gDstImgBytes = <usize>(O * OHW) << 2;
      directConv(w + (<usize>(g * Og * Kc) << 2), false, Og, Kc, Cg, N, col, scratch);
    }
    return;
  }
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const xg = x + (<usize>((n * C + g * Cg) * HW) << 2);
      const wg = w + (<usize>(g * Og * Kc) << 2);
      const yg = y + (<usize>((n * O + g * Og) * OHW) << 2);
      let b = xg;
      if (!pw) {
        im2col(xg, col, Cg, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
        b = col;
      }
      gemm(0, 0, Og, OHW, Kc, 1, wg, Kc, b, OHW, 0, yg, OHW);
    }
  }
}

/** dx = conv2d input gradient. col: scratch of conv_scratch_floats(1, …) floats. */
export function conv2d_backward_input(dy: usize, w: usize, dx: usize, col: usize,
                                      N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                      SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                      OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  if (backwardInputDirect(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW)) {
    // dx[n,c,ih,iw] = Σ_{o,kh',kw'} dy[n,o, ih-PHt+kh'·DH, iw-PWt+kw'·DW]·w[o,c,KH-1-kh',KW-1-kw']
    const scratch = conv_scratch_floats(1, N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW);
    const PHt = DH * (KH - 1) - PH, PWt = DW * (KW - 1) - PW;
    for (let g = 0; g < G; g++) {
      setGeom(dy + (<usize>(g * Og * OHW) << 2), <usize>(O * OHW) << 2, OH, OW, KH, KW, 1, 1,
              PHt, PWt, DH, DW, H, W);
      gDst = dx + (<usize>(g * Cg * HW) << 2);
      gDstImgBytes = <usize>(C * HW) << 2;
      gCg = Cg;
      directConv(w + (<usize>(g * Og * Kc) << 2), true, Cg, Og * KH * KW, Og, N, col, scratch);
    }
    return;
  }
  if (!pw) memory.fill(dx, 0, <usize>N * <usize>C * <usize>HW << 2);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const dxg = dx + (<usize>((n * C + g * Cg) * HW) << 2);
      const wg = w + (<usize>(g * Og * Kc) << 2);
      const dyg = dy + (<usize>((n * O + g * Og) * OHW) << 2);
      if (pw) {
        gemm(1, 0, Kc, OHW, Og, 1, wg, Kc, dyg, OHW, 0, dxg, OHW);
      } else {
        gemm(1, 0, Kc, OHW, Og, 1, wg, Kc, dyg, OHW, 0, col, OHW);
        col2im(col, dxg, Cg, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
      }
    }
  }
}

// Images whose weight-gradient terms one gemm sums: enough that the reduction over their
// pixels fills a KC block. Summing image by image with small planes (ResNet-18's 4×4 layer:
// 16 pixels) would read and write all of dw once per image for a 16-deep product.
function imagesPerGemm(N: i32, OHW: i32): i32 {
  return OHW >= KC ? 1 : max(1, min(N, KC / OHW));
}

// ---- weight gradient: implicit im2col ----
// The gemm's B is the im2col matrix op(B)[p][j] = value that tap j reads for pixel p (p runs
// over the pixels of a chunk of images), never written out: packPatches fills the gemm's B
// strips straight from the chunk's padded images (laid out as for the direct path) through
// the tap-offset table, four adjacent pixels of eight taps at a time (a 4×4 transpose twice).
let gPatchImgs: usize = 0; // the chunk's padded images, gPatchPlaneBytes apart
let gPatchPlaneBytes: usize = 0;
let gPatchOffs: usize = 0; // tap byte offsets (one i32 per tap of the channel block)
let gPatchWq: i32 = 0; // padded phase-plane row length

function patchBase(img: i32, oh: i32, ow: i32): usize {
  return gPatchImgs + <usize>img * gPatchPlaneBytes + (<usize>(oh * gPatchWq + ow) << 2);
}

function packPatches(p0: i32, j0: i32, kc: i32, nc: i32, dst: usize): void {
  const img0 = p0 / gOHW, r0 = p0 - img0 * gOHW, oh0 = r0 / gOW, ow0 = r0 - oh0 * gOW;
  for (let s = 0; s < nc; s += NR) {
    const nr = min(NR, nc - s);
    const d = dst + (<usize>(s * kc) << 2);
    const o = gPatchOffs + (<usize>(j0 + s) << 2);
    let img = img0, oh = oh0, ow = ow0;
    let p = 0;
    while (p < kc) {
      const dp = d + (<usize>(p * NR) << 2);
      if (nr == NR && ow + 4 <= gOW && p + 4 <= kc) {
        const base = patchBase(img, oh, ow);
        storeStripRows(v128.load(base + load<i32>(o)), v128.load(base + load<i32>(o, 4)),
                       v128.load(base + load<i32>(o, 8)), v128.load(base + load<i32>(o, 12)), dp);
        storeStripRows(v128.load(base + load<i32>(o, 16)), v128.load(base + load<i32>(o, 20)),
                       v128.load(base + load<i32>(o, 24)), v128.load(base + load<i32>(o, 28)), dp + 16);
        p += 4;
        ow += 4;
      } else {
        // one pixel: a row's ragged end, a short last block or a short last strip
        const base = patchBase(img, oh, ow);
        for (let jj = 0; jj < NR; jj++) {
          store<f32>(dp + (<usize>jj << 2), jj < nr ? load<f32>(base + load<i32>(o + (<usize>jj << 2))) : <f32>0);
        }
        p++;
        ow++;
      }
      if (ow == gOW) {
        ow = 0;
        if (++oh == gOH) { oh = 0; img++; }
      }
    }
  }
}

/** dw = conv2d weight gradient, summed over the batch, for the input channels [c0, c1) only
 * (dw[:, c-block]); [0, C) is the whole gradient. col: conv_scratch_floats(2, …) floats. */
export function conv2d_backward_weight(dy: usize, x: usize, dw: usize, col: usize,
                                       N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                       SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                       OH: i32, OW: i32, c0: i32, c1: i32): void {
  const Cg = C / G, Og = O / G;
  const KHW = KH * KW;
  const Kc = Cg * KHW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  const nb = imagesPerGemm(N, OHW);
  for (let g = 0; g < G; g++) {
    const lo = max(c0, g * Cg) - g * Cg, hi = min(c1, (g + 1) * Cg) - g * Cg;
    if (lo >= hi) continue;
    const nk = (hi - lo) * KHW;
    const dwg = dw + (<usize>(g * Og * Kc + lo * KHW) << 2);
    if (N <= 0 || OHW <= 0) {
      for (let o = 0; o < Og; o++) memory.fill(dwg + (<usize>(o * Kc) << 2), 0, <usize>nk << 2);
      continue;
    }
    const dyg = dy + (<usize>(g * Og * OHW) << 2);
    if (pw && nb == 1) {
      // 1×1, stride 1: the images themselves are the im2col matrix
      for (let n = 0; n < N; n++) {
        gemm(0, 1, Og, nk, OHW, 1, dyg + <usize>n * (<usize>(O * OHW) << 2), OHW,
             x + (<usize>((n * C + g * Cg + lo) * HW) << 2), HW, n == 0 ? <f32>0 : <f32>1, dwg, Kc);
      }
      continue;
    }
    // nb padded images, the block's tap offsets, and (nb > 1) their dy side by side.
    setGeom(x + (<usize>((g * Cg + lo) * HW) << 2), <usize>(C * HW) << 2, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
    const Hq = (H + 2 * PH + SH - 1) / SH, Wq = (W + 2 * PW + SW - 1) / SW;
    const planeFloats = <i32>paddedFloats(hi - lo, H, W, PH, PW, SH, SW);
    gPatchImgs = col;
    gPatchPlaneBytes = <usize>planeFloats << 2;
    gPatchOffs = col + (<usize>(nb * planeFloats) << 2);
    gPatchWq = Wq;
    tapOffsets(gPatchOffs, nk, Hq, Wq);
    const ld = nb * OHW;
    const dyc = gPatchOffs + (<usize>nk << 2);
    for (let n0 = 0; n0 < N; n0 += nb) {
      const cnt = min(nb, N - n0);
      for (let i = 0; i < cnt; i++) {
        padImage(gSrc + <usize>(n0 + i) * gImgBytes, gPatchImgs + <usize>i * gPatchPlaneBytes, hi - lo, Hq, Wq);
      }
      let a = dyg + <usize>n0 * (<usize>(O * OHW) << 2);
      let lda = OHW;
      if (nb > 1) {
        for (let i = 0; i < cnt; i++) {
          for (let o = 0; o < Og; o++) {
            memory.copy(dyc + (<usize>(o * ld + i * OHW) << 2), a + (<usize>((i * O + o) * OHW) << 2), <usize>OHW << 2);
          }
        }
        a = dyc;
        lda = ld;
      }
      gemmWith(0, Og, nk, cnt * OHW, 1, a, lda, packPatches, n0 == 0 ? <f32>0 : <f32>1, dwg, Kc);
    }
  }
}
