/**
 * What the Winograd tests and bench/winograd.ts measure 3×3, stride-1, pad-1 convolutions
 * against: seeded values in [-1, 1) (a 32-bit LCG, so every run and runtime sees the same
 * numbers without the library's PRNG), a float64 direct convolution and weight gradient that
 * also return each output's Σ|x·w| (the scale of its rounding error), the input gradient's
 * filters as a forward convolution's, and the error figures.
 */

/** n seeded values in [-1, 1). */
export function lcgValues(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return v;
}

/** y[n][o][h][w] in float64 and Σ|x·w| per output, for the first `images` images of x [·][C][H][W], w [O][C][3][3]. */
export function conv3x3Reference(x: Float32Array, w: Float32Array, images: number, C: number, O: number, H: number, W: number) {
  const HW = H * W, y = new Float64Array(images * O * HW), mag = new Float64Array(y.length);
  for (let n = 0; n < images; n++) {
    for (let o = 0; o < O; o++) {
      for (let h = 0; h < H; h++) {
        for (let v = 0; v < W; v++) {
          let s = 0, a = 0;
          for (let c = 0; c < C; c++) {
            const xc = (n * C + c) * HW, wc = (o * C + c) * 9;
            for (let kh = 0; kh < 3; kh++) {
              const ih = h + kh - 1;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < 3; kw++) {
                const iw = v + kw - 1;
                if (iw < 0 || iw >= W) continue;
                const t = x[xc + ih * W + iw] * w[wc + kh * 3 + kw];
                s += t;
                a += Math.abs(t);
              }
            }
          }
          const i = ((n * O + o) * H + h) * W + v;
          y[i] = s;
          mag[i] = a;
        }
      }
    }
  }
  return { y, mag };
}

/** dw[o][c][kh][kw] = Σ_{n,h,w} dy[n][o][h][w]·x[n][c][h+kh-1][w+kw-1] in float64 over N images, and Σ|dy·x| per element. */
export function conv3x3WeightGradReference(x: Float32Array, dy: Float32Array, N: number, C: number, O: number, H: number, W: number) {
  const HW = H * W, y = new Float64Array(O * C * 9), mag = new Float64Array(y.length);
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) {
          let s = 0, a = 0;
          for (let n = 0; n < N; n++) {
            const yo = (n * O + o) * HW, xc = (n * C + c) * HW;
            for (let h = Math.max(0, 1 - kh); h < Math.min(H, H + 1 - kh); h++) {
              for (let v = Math.max(0, 1 - kw); v < Math.min(W, W + 1 - kw); v++) {
                const t = dy[yo + h * W + v] * x[xc + (h + kh - 1) * W + v + kw - 1];
                s += t;
                a += Math.abs(t);
              }
            }
          }
          y[((o * C + c) * 3 + kh) * 3 + kw] = s;
          mag[((o * C + c) * 3 + kh) * 3 + kw] = a;
        }
      }
    }
  }
  return { y, mag };
}

/** The input gradient's filters as a forward convolution's: w'[c][o][kh][kw] = w[o][c][2-kh][2-kw]. */
export function flipTranspose(w: Float32Array, C: number, O: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      for (let k = 0; k < 9; k++) t[(c * O + o) * 9 + k] = w[(o * C + c) * 9 + 8 - k];
    }
  }
  return t;
}

/**
 * Errors of `got` (its first outputs) against the reference: max |err|, that over max |y|, and
 * the worst |err| / (2⁻²⁴·Σ|x·w|); `zeroOk` is false if an output without terms is not exactly 0.
 */
export function conv3x3Errors(got: Float32Array, ref: { y: Float64Array; mag: Float64Array }) {
  let maxAbs = 0, maxRef = 0, maxScaled = 0, zeroOk = true;
  for (let i = 0; i < ref.y.length; i++) {
    const e = Math.abs(got[i] - ref.y[i]);
    maxAbs = Math.max(maxAbs, e);
    maxRef = Math.max(maxRef, Math.abs(ref.y[i]));
    if (ref.mag[i] > 0) maxScaled = Math.max(maxScaled, e / (2 ** -24 * ref.mag[i]));
    else if (got[i] !== 0) zeroOk = false;
  }
  return { maxAbs, maxRel: maxRef > 0 ? maxAbs / maxRef : 0, maxScaled, zeroOk };
}
