// 2-D convolution (NCHW, grouped, strided, padded, dilated) as im2col/col2im + gemm.
// x [N,C,H,W], w [O, C/G, KH, KW], y/dy [N,O,OH,OW]. For each image n and group g the
// input patch matrix col [(C/G)·KH·KW × OH·OW] is built in caller-provided scratch and
// multiplied with the group's filter matrix. 1×1 / stride-1 / pad-0 convolutions use x
// (or dx) directly as the patch matrix. All loops run in a fixed order.
import { gemm } from "./gemm";

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

// @ts-ignore: decorator
@inline
function isPointwise(H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, OH: i32, OW: i32): bool {
  return KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0 && OH == H && OW == W;
}

/** y = conv2d(x, w). col: scratch of at least (C/G)·KH·KW·OH·OW floats. */
export function conv2d_forward(x: usize, w: usize, y: usize, col: usize,
                               N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                               SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                               OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
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

/** dx = conv2d input gradient. col: scratch as for the forward. */
export function conv2d_backward_input(dy: usize, w: usize, dx: usize, col: usize,
                                      N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                      SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                      OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
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

/** dw = conv2d weight gradient, summed over the batch in increasing n. */
export function conv2d_backward_weight(dy: usize, x: usize, dw: usize, col: usize,
                                       N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                       SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                       OH: i32, OW: i32): void {
  const Cg = C / G, Og = O / G;
  const Kc = Cg * KH * KW, OHW = OH * OW, HW = H * W;
  const pw = isPointwise(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
  if (N <= 0) {
    memory.fill(dw, 0, <usize>O * <usize>Kc << 2);
    return;
  }
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const xg = x + (<usize>((n * C + g * Cg) * HW) << 2);
      const dwg = dw + (<usize>(g * Og * Kc) << 2);
      const dyg = dy + (<usize>((n * O + g * Og) * OHW) << 2);
      let b = xg;
      if (!pw) {
        im2col(xg, col, Cg, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW);
        b = col;
      }
      gemm(0, 1, Og, Kc, OHW, 1, dyg, OHW, b, OHW, n == 0 ? <f32>0 : <f32>1, dwg, Kc);
    }
  }
}
