/**
 * A float32 model of Winograd minimal filtering F(m×m, 3×3) (Lavin & Gray, "Fast Algorithms
 * for Convolutional Neural Networks", CVPR 2016) for a 3×3, stride-1, pad-1 convolution, in
 * plain JavaScript with every operation rounded to float32 (Math.fround, no fused
 * multiply-adds), to say what a larger tile would cost in accuracy before any kernel is
 * written. F(2×2, 3×3), which the CPU backend runs, needs 16 multiplies per 4 outputs and
 * input channel (2.25× fewer than direct convolution); F(4×4, 3×3) needs 36 per 16 (4× fewer),
 * but its transforms have coefficients up to 8 and fractions of 24, so its rounding error is
 * larger. The model follows the kernels' scheme: filters transformed in float64 and rounded
 * once to float32, the input transform Bᵀ d B and the output transform Aᵀ M A in float32,
 * and M summed over input channels in increasing order. Its F(2×2) error next to the
 * kernel's own (bench/winograd.ts) shows how well it stands for a real kernel.
 */

/** The transforms of F(m×m, 3×3): Bᵀ (α×α), G (α×3), Aᵀ (m×α), α = m + 2. */
interface Tiles { m: number; BT: number[][]; G: number[][]; AT: number[][] }

export const F2: Tiles = {
  m: 2,
  BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
  G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
  AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
};

// Interpolation points 0, ±1, ±2 and ∞ (Lavin & Gray, section 4.1).
export const F4: Tiles = {
  m: 4,
  BT: [
    [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1],
  ],
  G: [
    [1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1],
  ],
  AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
};

const f = Math.fround;

/** L·X·R with R given as its transpose (Bᵀ d B, G g Gᵀ, Aᵀ M A), each operation rounded by `round`. */
function sandwich(L: number[][], X: number[][], RT: number[][], round: (v: number) => number): number[][] {
  const LX = L.map((row) => X[0].map((_, j) => row.reduce((s, l, k) => (l === 0 ? s : round(s + round(l * X[k][j]))), 0)));
  return LX.map((row) => RT.map((r) => r.reduce((s, rv, k) => (rv === 0 ? s : round(s + round(row[k] * rv))), 0)));
}

/**
 * The first `images` images of y = conv3x3(x, w) (NCHW, pad 1, stride 1; w: O×C×3×3) by
 * F(m×m, 3×3) in float32.
 */
export function winogradModel(t: Tiles, x: Float32Array, w: Float32Array, images: number, C: number, O: number, H: number, W: number): Float32Array {
  const { m } = t, alpha = m + 2;
  // U[o][c]: G g Gᵀ in float64, rounded once
  const U = Array.from({ length: O }, (_, o) => Array.from({ length: C }, (_, c) => {
    const g = [0, 1, 2].map((i) => [0, 1, 2].map((j) => w[((o * C + c) * 3 + i) * 3 + j]));
    return sandwich(t.G, g, t.G, (v) => v).map((row) => row.map(f));
  }));
  const tilesH = Math.ceil(H / m), tilesW = Math.ceil(W / m);
  const y = new Float32Array(images * O * H * W);
  const at = (n: number, c: number, h: number, v: number) => (h >= 0 && h < H && v >= 0 && v < W ? x[((n * C + c) * H + h) * W + v] : 0);
  for (let n = 0; n < images; n++) {
    for (let th = 0; th < tilesH; th++) {
      for (let tw = 0; tw < tilesW; tw++) {
        // V[c] = Bᵀ d B for the α×α patch at (th·m − 1, tw·m − 1)
        const V = Array.from({ length: C }, (_, c) => {
          const d = Array.from({ length: alpha }, (_, i) => Array.from({ length: alpha }, (_, j) => at(n, c, th * m - 1 + i, tw * m - 1 + j)));
          return sandwich(t.BT, d, t.BT, f);
        });
        for (let o = 0; o < O; o++) {
          const M = Array.from({ length: alpha }, () => new Array<number>(alpha).fill(0));
          for (let c = 0; c < C; c++) {
            for (let i = 0; i < alpha; i++) for (let j = 0; j < alpha; j++) M[i][j] = f(M[i][j] + f(U[o][c][i][j] * V[c][i][j]));
          }
          const Y = sandwich(t.AT, M, t.AT, f);
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < m; j++) {
              const h = th * m + i, v = tw * m + j;
              if (h < H && v < W) y[((n * O + o) * H + h) * W + v] = Y[i][j];
            }
          }
        }
      }
    }
  }
  return y;
}
