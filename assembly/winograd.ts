// Winograd minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", CVPR 2016) for 3×3, stride-1, pad-1, undilated, ungrouped convolutions:
// the forward pass, the input gradient (the same product with the flipped, transposed
// filters) and the weight gradient (at the end of the file). Each 2×2 block of outputs is Aᵀ[Σ_k U_k ⊙ V_k]A, where V_k = Bᵀ d_k B is the
// transform of the 4×4 input patch d_k of channel k and U_k = G g_k Gᵀ of the 3×3 filter g_k:
// 16 multiplies per 2×2 outputs and input channel instead of 36 (2.25× fewer), paid for by the
// input and output transforms (and a different rounding: see below).
//
// Layout, per call: the filters are transformed once (in float64, rounded once to f32) and
// packed as 16 B matrices U[ξ] (k-major NR-strips of the m outputs, KC blocks, as the direct
// path packs filters), by winograd_filters into a buffer that all of the call's image blocks
// read (transforming the bank in every block cost a 256-channel 8×8 layer half as much again
// when cut into blocks for 2 threads: bench/step_profile.ts, 1x2). Per image: a zero-padded copy of the source planes (pad 1 on top and
// left; enough zeros on the right and bottom that every tile, and every group of 4 tiles,
// reads a whole 4×4 patch); then, block by block of tile rows (sized to stay in cache), the
// input transform V[ξ][k][t] for the block's tiles t (tile rows padded to a multiple of 4
// tiles), 16 products M[ξ][m][t] = Σ_k U[ξ][k][m]·V[ξ][k][t] on tile.ts's 4×8 register tile
// (4 adjacent tiles × 8 outputs), and the output transform of M into the destination. Planes
// under 4 tiles wide number their tiles densely across rows and whole images instead (see
// setConvGeom), so that the products do not run over padding tiles.
//
// Summation order (depends only on shapes): every M element sums k in increasing order in
// fixed KC blocks (blocks added in increasing order); the transforms are fixed expressions.
// Images are independent, so the backend's split by images gives the same bits at any thread
// count. Rounding: every output is a fixed ±1 combination of 16 products' sums instead of a
// 9·K-term dot product, so its error differs from the direct path's (measured in
// bench/winograd.ts; the transforms' coefficients 0, ±½, ±1 are exact).
import { gemm, gemmScratchPtr } from "./gemm";
import { KC, MC, MR, NC, NR, stridedTile } from "./tile";

// Bytes of V and M that one block of tile rows may use (L2-sized on the machines we measured).
// @ts-ignore: decorator
@inline const BLOCK_BYTES: i32 = 192 * 1024;
// Largest transformed filter bank (floats, 16·K·Mp before oddLines' padding) a call will build.
// @ts-ignore: decorator
@inline const MAX_FILTER_FLOATS: i64 = 1 << 22;

// ---- geometry of one call (module globals; kernels run one at a time) ----
let gK: i32 = 0; // reduction channels (source planes)
let gM: i32 = 0; // output channels
let gMp: i32 = 0; // gM rounded up to NR
let gH: i32 = 0, gW: i32 = 0; // source = destination plane
let gTH: i32 = 0, gTWg: i32 = 0; // tile rows; tiles per row, rounded up to 4
let gHp: i32 = 0, gWp: i32 = 0; // padded plane
let gRows: i32 = 0; // tile rows per block
let gTb: i32 = 0; // tiles per block (gRows·gTWg; the weight gradient's: gImgs·gRows·gTWg)
let gImgs: i32 = 1; // whole images per block of the weight gradient (gRows = gTH when above 1)
let gDense: i32 = 0; // a narrow plane's dense layout: images per block (0: tile-row blocks)
let gTW: i32 = 0; // tiles per row, not rounded (the dense layout's)
let gUxi: i32 = 0; // floats from one of U's 16 matrices [K][Mp] to the next (oddLines)
let gVxi: i32 = 0; // the same for V's [K][Tb] (setPlanes)
let gMxi: i32 = 0; // the same for M's [M][Tb] (the weight gradient's Z)

// The 16 matrices of U, V and M (one per ξ) lie apart by their size padded to an odd number of
// 64-byte lines. Every transform stores or reads one filter's or tile's 16 values, one per
// matrix. Unpadded, those strides are whole multiples of large powers of two: U's is K·Mp
// floats (1 MiB for 512 channels: the 16 stores of a filter fell into one set of L1 and of L2,
// and the transform of ResNet-18's 512-channel bank took 20 ms, a third of its 4×4 forward),
// and V's and M's come out at about BLOCK_BYTES/32 floats (6 KiB: two L1 sets for 16
// accesses). An odd number of lines sends the 16 to 16 different sets.
// n output channels rounded up to whole NR-wide strips of the packed filters.
// @ts-ignore: decorator
@inline
function stripFloats(n: i32): i32 {
  return (n + NR - 1) & ~(NR - 1);
}
function oddLines(floats: i32): i32 {
  return (((floats + 15) >> 4) | 1) << 4;
}
function setPlanes(): void {
  gVxi = oddLines(gK * gTb);
  gMxi = oddLines(gM * gTb);
}

// sizeK: the channels that size the tile-row blocks (the layer's, when a call covers a block
// of K only: the blocks, and so the weight gradient's summation order, must not depend on it).
function setGeom(K: i32, M: i32, H: i32, W: i32, sizeK: i32 = K): void {
  gK = K; gM = M; gMp = stripFloats(M); gH = H; gW = W;
  gUxi = oddLines(K * gMp);
  gDense = 0; // the dense layout, if at all, is set by setConvGeom / setWeightGeom
  gTH = (H + 1) >> 1;
  gTWg = (((W + 1) >> 1) + 3) & ~3;
  gHp = 2 * gTH + 2;
  gWp = 2 * gTWg + 4; // the last group of 4 tiles loads 12 floats from its first column
  const perTile = 16 * (sizeK + M) * 4;
  gRows = min(gTH, max(1, BLOCK_BYTES / (perTile * gTWg)));
  gTb = gRows * gTWg;
  setPlanes();
}

// Forward and input gradient. A plane under 4 tiles wide (8 columns or fewer) would leave most
// of each row's group of 4 tiles empty (ResNet-18's 4×4 layers: half, and their products are
// all of the work there), so its tiles are numbered densely instead, across rows and whole
// images: t = i·TH·TW + th·TW + tw for image i of a block of gDense images (at least
// DENSE_BLOCK_TILES tiles: with 512 channels a tile's V and M take 64 KiB, and blocks of a few
// tiles would read the whole filter bank U again for each), the block rounded up to 4 tiles.
// Those tiles are transformed one at a time (denseConv), by the same expressions in the same
// order as the four-at-a-time transforms, so the results are the same bits either way.
// @ts-ignore: decorator
@inline const DENSE_BLOCK_TILES: i32 = 16;
// A tall narrow plane with more tiles than this keeps the tile-row blocks, whose scratch is
// bounded by BLOCK_BYTES (a dense block holds whole images).
// @ts-ignore: decorator
@inline const DENSE_MAX_IMAGE_TILES: i32 = 64;

// Is the plane narrow enough for the dense layout (gTH and gTW set)?
// @ts-ignore: decorator
@inline
function denseFits(): bool {
  return gTW < 4 && gTH * gTW <= DENSE_MAX_IMAGE_TILES;
}

function setConvGeom(K: i32, M: i32, H: i32, W: i32): void {
  setGeom(K, M, H, W);
  gTW = (W + 1) >> 1;
  if (!denseFits()) return;
  const perImage = gTH * gTW;
  const perTile = 16 * (K + M) * 4;
  gDense = max(1, max(BLOCK_BYTES / perTile, DENSE_BLOCK_TILES) / perImage);
  gTb = (gDense * perImage + 3) & ~3;
  setPlanes();
}

// Scratch floats of one thread: [P: one padded plane Hp·Wp][R: K·Hp·4·TWg, none when dense][V: 16 matrices
// K·Tb, gVxi apart][M: 16 matrices M·Tb, gMxi apart];
// the transformed filters U (16 matrices K·Mp, gUxi apart) are a separate buffer, shared by a call's parts.
function filterFloats(): i64 { return <i64>16 * <i64>gUxi; }
function rowFloats(): i64 { return gDense > 0 ? 0 : <i64>gK * <i64>gHp * <i64>(4 * gTWg); }
function scratchFloats(): i64 {
  return <i64>(gHp * gWp) + rowFloats() + <i64>16 * <i64>(gVxi + gMxi);
}

/** Does F(2×2, 3×3) apply to this convolution (and fit the kernel's limits)? */
export function winogradFits(N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32, SH: i32, SW: i32,
                             PH: i32, PW: i32, DH: i32, DW: i32, G: i32, OH: i32, OW: i32): bool {
  if (!(N > 0 && C > 0 && O > 0 && H > 0 && W > 0 && KH == 3 && KW == 3 && SH == 1 && SW == 1 &&
        PH == 1 && PW == 1 && DH == 1 && DW == 1 && G == 1 && OH == H && OW == W)) return false;
  return <i64>16 * max(<i64>C * <i64>stripFloats(O), <i64>O * <i64>stripFloats(C)) <= MAX_FILTER_FLOATS;
}

/** Col scratch floats of the Winograd forward (backward false) or input gradient (true). */
export function winogradScratchFloats(backward: bool, C: i32, H: i32, W: i32, O: i32): i32 {
  if (backward) setConvGeom(O, C, H, W);
  else setConvGeom(C, O, H, W);
  return <i32>scratchFloats();
}

// U[ξ] = (G g Gᵀ)[ξ] for the reduction channels k of [k0, k1) and every m (zero for the padding
// m in [M, Mp)), packed: floats at U + ξ·gUxi + pc·Mp + strip·kc + p·NR + jj for k = pc + p
// (KC block pc), m = strip + jj. Forward (flip false): g = w[m][k]; input gradient:
// g[kh][kw] = w[k][m][2-kh][2-kw] (w is [O][C][3][3] either way). Each k owns its own floats of
// U, so blocks of k may be transformed by different threads. The loops run strip by strip and
// k by k within one, so each ξ's strip is written front to back (a deep bank is megabytes,
// and the k-major order wrote it in 32-byte pieces, every line twice, far apart).
function transformFilters(w: usize, flip: bool, U: usize, k0: i32, k1: i32): void {
  const K = gK, M = gM, Mp = gMp;
  const xi = <usize>gUxi << 2;
  for (let pc = (k0 / KC) * KC; pc < k1; pc += KC) {
    const kc = min(KC, K - pc), ka = max(k0, pc), kb = min(k1, pc + kc);
    for (let strip = 0; strip < Mp; strip += NR) {
      for (let k = ka; k < kb; k++) {
        const row = U + (<usize>(pc * Mp + strip * kc + (k - pc) * NR) << 2);
        for (let jj = 0; jj < NR; jj++) {
          const m = strip + jj, base = row + (<usize>jj << 2);
          if (m >= M) {
            for (let x = 0; x < 16; x++) store<f32>(base + <usize>x * xi, 0);
          } else {
            transformFilter(w + (<usize>((flip ? k * M + m : m * K + k) * 9) << 2), flip, base, xi);
          }
        }
      }
    }
  }
}

// The 16 values of G g Gᵀ for the 3×3 filter at src (flipped for the input gradient), at base
// + ξ·xi: t = G·g (4×3; G's rows [1,0,0], [½,½,½], [½,-½,½], [0,0,1]), one column at a time,
// then each row of t times Gᵀ is a row of U. In float64, rounded once to f32.
// @ts-ignore: decorator
@inline
function transformFilter(src: usize, flip: bool, base: usize, xi: usize): void {
  const a0 = tap(src, flip, 0), b0 = tap(src, flip, 3), c0 = tap(src, flip, 6);
  const a1 = tap(src, flip, 1), b1 = tap(src, flip, 4), c1 = tap(src, flip, 7);
  const a2 = tap(src, flip, 2), b2 = tap(src, flip, 5), c2 = tap(src, flip, 8);
  filterRow(base, xi, 0, a0, a1, a2);
  filterRow(base, xi, 1, 0.5 * (a0 + b0 + c0), 0.5 * (a1 + b1 + c1), 0.5 * (a2 + b2 + c2));
  filterRow(base, xi, 2, 0.5 * (a0 - b0 + c0), 0.5 * (a1 - b1 + c1), 0.5 * (a2 - b2 + c2));
  filterRow(base, xi, 3, c0, c1, c2);
}

/** Floats of the transformed filter bank of the Winograd forward (backward false) or input
 * gradient (true) of a C → O layer: what winograd_filters writes and the convolution reads. */
export function winogradFilterFloats(backward: bool, C: i32, O: i32): i32 {
  if (backward) setGeom(O, C, 1, 1);
  else setGeom(C, O, 1, 1);
  return <i32>filterFloats();
}

/** The Winograd transform of the filters w ([O][C][3][3]) of a C → O layer into u, for the
 * forward (backward 0) or, flipped and transposed, the input gradient (backward 1); only the
 * reduction channels [k0, k1) (input channels forward, output channels backward), so a call's
 * parts may split them. u: winogradFilterFloats floats, shared by the convolution's parts. */
export function winograd_filters(w: usize, u: usize, C: i32, O: i32, backward: i32, k0: i32, k1: i32): void {
  if (backward != 0) setGeom(O, C, 1, 1);
  else setGeom(C, O, 1, 1);
  transformFilters(w, backward != 0, u, max(0, k0), min(gK, k1));
}

// Filter tap i (row-major 3×3) as float64, the filter flipped (tap 8 - i) for the input gradient.
// @ts-ignore: decorator
@inline
function tap(src: usize, flip: bool, i: i32): f64 {
  return <f64>load<f32>(src + (<usize>(flip ? 8 - i : i) << 2));
}

// Row i of U = (row i of t)·Gᵀ, rounded once to f32, at ξ = 4i .. 4i+3 (xi bytes apart).
// @ts-ignore: decorator
@inline
function filterRow(base: usize, xi: usize, i: i32, a: f64, b: f64, c: f64): void {
  const row = base + <usize>(4 * i) * xi;
  store<f32>(row, <f32>a);
  store<f32>(row + xi, <f32>(0.5 * (a + b + c)));
  store<f32>(row + 2 * xi, <f32>(0.5 * (a - b + c)));
  store<f32>(row + 3 * xi, <f32>c);
}

// n floats from src to dst, four at a time (the ranges do not overlap). The padded planes are
// filled row by row, and their rows are short (4 to 32 floats): memory.copy, a call out of
// the compiled code in V8, cost about a fifth of the padding and row transform.
// @ts-ignore: decorator
@inline
function copyRow(dst: usize, src: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), v128.load(src + (<usize>i << 2)));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)));
}

// Channel k of one image, zero-padded into the Hp×Wp plane P (one zero row and column on top
// and left, the rest at the bottom and right), then its rows times B into R: R[k][ρ][j][tw] =
// (d·B)[·][j] of padded row ρ for tile column tw (each padded row serves two tile rows, so the
// row half of Bᵀ d B is done once per row, four tiles at a time).
function padAndRowTransform(src: usize, P: usize, R: usize): void {
  const HW = gH * gW;
  const rowBytes = <usize>(4 * gTWg) << 2;
  memory.fill(P, 0, <usize>(gHp * gWp) << 2);
  for (let k = 0; k < gK; k++) {
    for (let h = 0; h < gH; h++) {
      copyRow(P + (<usize>((h + 1) * gWp + 1) << 2), src + (<usize>(k * HW + h * gW) << 2), gW);
    }
    const Rk = R + <usize>(k * gHp) * rowBytes;
    for (let r = 0; r < gHp; r++) {
      const row = P + (<usize>(r * gWp) << 2);
      const out = Rk + <usize>r * rowBytes;
      for (let tw = 0; tw < gTWg; tw += 4) rowB(row + (<usize>(2 * tw) << 2), out + (<usize>tw << 2), <usize>gTWg << 2);
    }
  }
}

// One padded row of four horizontally adjacent tiles (columns 2·tw .. 2·tw+9 from `row`):
// s_j = column j of each tile's patch; d·B = [s0 - s2, s1 + s2, s2 - s1, s1 - s3], stored at
// out + j·jBytes. Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
// @ts-ignore: decorator
@inline
function rowB(row: usize, out: usize, jBytes: usize): void {
  const a = v128.load(row), b = v128.load(row, 16), c = v128.load(row, 32);
  const e0 = v128.shuffle<f32>(a, b, 0, 2, 4, 6), o0 = v128.shuffle<f32>(a, b, 1, 3, 5, 7);
  const e1 = v128.shuffle<f32>(b, c, 0, 2, 4, 6), o1 = v128.shuffle<f32>(b, c, 1, 3, 5, 7);
  const s2 = v128.shuffle<f32>(e0, e1, 1, 2, 3, 6), s3 = v128.shuffle<f32>(o0, o1, 1, 2, 3, 6);
  v128.store(out, f32x4.sub(e0, s2));
  v128.store(out + jBytes, f32x4.add(o0, s2));
  v128.store(out + 2 * jBytes, f32x4.sub(s2, o0));
  v128.store(out + 3 * jBytes, f32x4.sub(o0, s3));
}

// V[ξ = 4i + j][k][t - t0] = (Bᵀ·(d·B))[i][j] for the tiles of tile rows [r0, r1), four
// tiles at a time, from the row-transformed padded rows 2·th .. 2·th+3 in R.
function inputTransform(R: usize, V: usize, r0: i32, r1: i32): void {
  const xiBytes = <usize>gVxi << 2;
  const jBytes = <usize>gTWg << 2;
  const rowBytes = 4 * jBytes;
  for (let k = 0; k < gK; k++) {
    const Rk = R + <usize>(k * gHp) * rowBytes;
    for (let th = r0; th < r1; th++) {
      const d = Rk + <usize>(2 * th) * rowBytes;
      const out = V + (<usize>(k * gTb + (th - r0) * gTWg) << 2);
      for (let tw = 0; tw < gTWg; tw += 4) {
        const q = d + (<usize>tw << 2), o = out + (<usize>tw << 2);
        for (let j = 0; j < 4; j++) {
          const c = q + <usize>j * jBytes;
          const w0 = v128.load(c), w1 = v128.load(c + rowBytes), w2 = v128.load(c + 2 * rowBytes), w3 = v128.load(c + 3 * rowBytes);
          const oj = o + <usize>j * xiBytes;
          v128.store(oj, f32x4.sub(w0, w2));
          v128.store(oj + 4 * xiBytes, f32x4.add(w1, w2));
          v128.store(oj + 8 * xiBytes, f32x4.sub(w2, w1));
          v128.store(oj + 12 * xiBytes, f32x4.sub(w1, w3));
        }
      }
    }
  }
}

// M[ξ][m][t] = Σ_k U[ξ][k][m]·V[ξ][k][t] for the block's nt tiles (a multiple of 4).
function products(U: usize, V: usize, Mt: usize, nt: i32): void {
  const tile = gemmScratchPtr() + (<usize>(MC * KC + KC * NC) << 2);
  const kStride = <usize>gTb << 2; // channel k of V[ξ] starts k·Tb floats in
  for (let xi = 0; xi < 16; xi++) {
    const Ux = U + (<usize>(xi * gUxi) << 2);
    const Vx = V + (<usize>(xi * gVxi) << 2);
    const Mx = Mt + (<usize>(xi * gMxi) << 2);
    for (let pc = 0; pc < gK; pc += KC) {
      const kc = min(KC, gK - pc);
      const mode = pc > 0 ? 2 : 0;
      const Vk = Vx + <usize>pc * kStride;
      const wb = Ux + (<usize>(pc * gMp) << 2);
      for (let jr = 0; jr < gM; jr += NR) {
        const pb = wb + (<usize>(jr * kc) << 2);
        const c = Mx + (<usize>(jr * gTb) << 2);
        for (let t = 0; t < nt; t += MR) {
          stridedTile(kc, Vk + (<usize>t << 2), kStride, pb, c + (<usize>t << 2), gTb, mode, MR, min(NR, gM - jr), tile);
        }
      }
    }
  }
}

// dst[m][2·th + i][2·tw + j] = (Aᵀ M A)[i][j] for the tiles of rows [r0, r1), four tiles at a
// time, dropping what falls outside the H×W plane. Aᵀ = [[1,1,1,0],[0,1,-1,-1]].
function outputTransform(Mt: usize, dst: usize, r0: i32, r1: i32): void {
  const xiBytes = <usize>gMxi << 2;
  const HW = gH * gW;
  for (let m = 0; m < gM; m++) {
    const plane = dst + (<usize>(m * HW) << 2);
    for (let th = r0; th < r1; th++) {
      for (let tw = 0; tw < gTWg; tw += 4) {
        const src = Mt + (<usize>(m * gTb + (th - r0) * gTWg + tw) << 2);
        // r_i = Aᵀ rows applied to the 4 rows of M, column by column
        const m00 = v128.load(src), m01 = v128.load(src + xiBytes), m02 = v128.load(src + 2 * xiBytes), m03 = v128.load(src + 3 * xiBytes);
        const m10 = v128.load(src + 4 * xiBytes), m11 = v128.load(src + 5 * xiBytes), m12 = v128.load(src + 6 * xiBytes), m13 = v128.load(src + 7 * xiBytes);
        const m20 = v128.load(src + 8 * xiBytes), m21 = v128.load(src + 9 * xiBytes), m22 = v128.load(src + 10 * xiBytes), m23 = v128.load(src + 11 * xiBytes);
        const m30 = v128.load(src + 12 * xiBytes), m31 = v128.load(src + 13 * xiBytes), m32 = v128.load(src + 14 * xiBytes), m33 = v128.load(src + 15 * xiBytes);
        const a0 = f32x4.add(f32x4.add(m00, m10), m20), b0 = f32x4.sub(f32x4.sub(m10, m20), m30);
        const a1 = f32x4.add(f32x4.add(m01, m11), m21), b1 = f32x4.sub(f32x4.sub(m11, m21), m31);
        const a2 = f32x4.add(f32x4.add(m02, m12), m22), b2 = f32x4.sub(f32x4.sub(m12, m22), m32);
        const a3 = f32x4.add(f32x4.add(m03, m13), m23), b3 = f32x4.sub(f32x4.sub(m13, m23), m33);
        const oh = 2 * th, ow = 2 * tw;
        storeOutputRow(plane, oh, ow, f32x4.add(f32x4.add(a0, a1), a2), f32x4.sub(f32x4.sub(a1, a2), a3));
        if (oh + 1 < gH) storeOutputRow(plane, oh + 1, ow, f32x4.add(f32x4.add(b0, b1), b2), f32x4.sub(f32x4.sub(b1, b2), b3));
      }
    }
  }
}

// Output row oh, columns ow .. ow+7: the four tiles' left (y0) and right (y1) columns interleaved.
// @ts-ignore: decorator
@inline
function storeOutputRow(plane: usize, oh: i32, ow: i32, y0: v128, y1: v128): void {
  const lo = v128.shuffle<f32>(y0, y1, 0, 4, 1, 5), hi = v128.shuffle<f32>(y0, y1, 2, 6, 3, 7);
  const p = plane + (<usize>(oh * gW + ow) << 2);
  if (ow + 8 <= gW) {
    v128.store(p, lo);
    v128.store(p, hi, 16);
    return;
  }
  for (let j = 0; j < 8 && ow + j < gW; j++) store<f32>(p + (<usize>j << 2), laneOf(j < 4 ? lo : hi, j & 3));
}

// @ts-ignore: decorator
@inline
function laneOf(v: v128, i: i32): f32 {
  switch (i) {
    case 0: return f32x4.extract_lane(v, 0);
    case 1: return f32x4.extract_lane(v, 1);
    case 2: return f32x4.extract_lane(v, 2);
    default: return f32x4.extract_lane(v, 3);
  }
}

// dst image n = the 3×3 pad-1 convolution of source image n (planes srcImgBytes / dstImgBytes
// apart) with the transformed filters U, for n < N. col: winogradScratchFloats floats.
function winogradConv(src: usize, srcImgBytes: usize, U: usize, dst: usize, dstImgBytes: usize,
                      col: usize, N: i32): void {
  if (gDense > 0) {
    denseConv(src, srcImgBytes, U, dst, dstImgBytes, col, N);
    return;
  }
  const P = col;
  const R = P + (<usize>(gHp * gWp) << 2);
  const V = R + (<usize>rowFloats() << 2);
  const Mt = V + (<usize>(16 * gVxi) << 2);
  for (let n = 0; n < N; n++) {
    padAndRowTransform(src + <usize>n * srcImgBytes, P, R);
    const out = dst + <usize>n * dstImgBytes;
    for (let r0 = 0; r0 < gTH; r0 += gRows) {
      const r1 = min(gTH, r0 + gRows);
      inputTransform(R, V, r0, r1);
      products(U, V, Mt, (r1 - r0) * gTWg);
      outputTransform(Mt, out, r0, r1);
    }
  }
}

// winogradConv in the dense layout (setConvGeom): per block of gDense images, V of all their
// tiles (padding tiles zero), the products, and the outputs.
function denseConv(src: usize, srcImgBytes: usize, U: usize, dst: usize, dstImgBytes: usize,
                   col: usize, N: i32): void {
  const P = col;
  const V = P + (<usize>(gHp * gWp) << 2);
  const Mt = V + (<usize>(16 * gVxi) << 2);
  const perImage = gTH * gTW;
  for (let n0 = 0; n0 < N; n0 += gDense) {
    const imgs = min(gDense, N - n0);
    const nt = imgs * perImage, ntp = (nt + 3) & ~3;
    for (let i = 0; i < imgs; i++) denseInput(src + <usize>(n0 + i) * srcImgBytes, P, V, i * perImage);
    for (let xi = 0; xi < 16; xi++) {
      for (let k = 0; k < gK; k++) {
        for (let t = nt; t < ntp; t++) store<f32>(V + (<usize>(xi * gVxi + k * gTb + t) << 2), 0);
      }
    }
    products(U, V, Mt, ntp);
    for (let i = 0; i < imgs; i++) denseOutput(Mt, dst + <usize>(n0 + i) * dstImgBytes, i * perImage);
  }
}

// V[ξ][k][t0 + th·TW + tw] for every channel k and tile of one image: the channel zero-padded
// into P, then per tile d·B along its 4 rows (rowB's expressions) and Bᵀ down the columns
// (inputTransform's).
function denseInput(src: usize, P: usize, V: usize, t0: i32): void {
  const HW = gH * gW;
  const xiBytes = <usize>gVxi << 2;
  memory.fill(P, 0, <usize>(gHp * gWp) << 2);
  for (let k = 0; k < gK; k++) {
    for (let h = 0; h < gH; h++) {
      copyRow(P + (<usize>((h + 1) * gWp + 1) << 2), src + (<usize>(k * HW + h * gW) << 2), gW);
    }
    for (let th = 0; th < gTH; th++) {
      for (let tw = 0; tw < gTW; tw++) {
        const d = P + (<usize>(2 * th * gWp + 2 * tw) << 2);
        const out = V + (<usize>(k * gTb + t0 + th * gTW + tw) << 2);
        for (let j = 0; j < 4; j++) {
          const w0 = rowBAt(d, j), w1 = rowBAt(d + (<usize>gWp << 2), j);
          const w2 = rowBAt(d + (<usize>(2 * gWp) << 2), j), w3 = rowBAt(d + (<usize>(3 * gWp) << 2), j);
          const oj = out + <usize>j * xiBytes;
          store<f32>(oj, w0 - w2);
          store<f32>(oj + 4 * xiBytes, w1 + w2);
          store<f32>(oj + 8 * xiBytes, w2 - w1);
          store<f32>(oj + 12 * xiBytes, w1 - w3);
        }
      }
    }
  }
}

// (d·B)[j] of the 4 values at `row`: rowB's s0 - s2, s1 + s2, s2 - s1, s1 - s3.
// @ts-ignore: decorator
@inline
function rowBAt(row: usize, j: i32): f32 {
  const s1 = load<f32>(row, 4), s2 = load<f32>(row, 8);
  if (j == 0) return load<f32>(row) - s2;
  if (j == 1) return s1 + s2;
  if (j == 2) return s2 - s1;
  return s1 - load<f32>(row, 12);
}

// The outputs of one image's tiles t0 + th·TW + tw, by outputTransform's expressions (Aᵀ down
// the columns of M, then along the rows), dropping what falls outside the plane.
function denseOutput(Mt: usize, dst: usize, t0: i32): void {
  const xiBytes = <usize>gMxi << 2;
  const HW = gH * gW;
  for (let m = 0; m < gM; m++) {
    const plane = dst + (<usize>(m * HW) << 2);
    for (let th = 0; th < gTH; th++) {
      for (let tw = 0; tw < gTW; tw++) {
        const src = Mt + (<usize>(m * gTb + t0 + th * gTW + tw) << 2);
        const a0 = columnA(src, xiBytes, 0), a1 = columnA(src, xiBytes, 1);
        const a2 = columnA(src, xiBytes, 2), a3 = columnA(src, xiBytes, 3);
        const b0 = columnB(src, xiBytes, 0), b1 = columnB(src, xiBytes, 1);
        const b2 = columnB(src, xiBytes, 2), b3 = columnB(src, xiBytes, 3);
        const oh = 2 * th, ow = 2 * tw;
        const p = plane + (<usize>(oh * gW + ow) << 2);
        store<f32>(p, (a0 + a1) + a2);
        if (ow + 1 < gW) store<f32>(p, (a1 - a2) - a3, 4);
        if (oh + 1 < gH) {
          const q = p + (<usize>gW << 2);
          store<f32>(q, (b0 + b1) + b2);
          if (ow + 1 < gW) store<f32>(q, (b1 - b2) - b3, 4);
        }
      }
    }
  }
}

// Column j of M (ξ = j, 4 + j, 8 + j, 12 + j) times Aᵀ's rows: (m0j + m1j) + m2j and (m1j - m2j) - m3j.
// @ts-ignore: decorator
@inline
function columnA(src: usize, xiBytes: usize, j: i32): f32 {
  const c = src + <usize>j * xiBytes;
  return (load<f32>(c) + load<f32>(c + 4 * xiBytes)) + load<f32>(c + 8 * xiBytes);
}
// @ts-ignore: decorator
@inline
function columnB(src: usize, xiBytes: usize, j: i32): f32 {
  const c = src + <usize>j * xiBytes;
  return (load<f32>(c + 4 * xiBytes) - load<f32>(c + 8 * xiBytes)) - load<f32>(c + 12 * xiBytes);
}

/** y = conv2d(x, w) by F(2×2, 3×3), u = winograd_filters(w, …, backward 0); winogradFits must
 * hold. col: conv_scratch_floats(3, …) floats. */
export function conv2d_forward_winograd(x: usize, u: usize, y: usize, col: usize,
                                        N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                        SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                        OH: i32, OW: i32): void {
  if (!winogradFits(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW)) return; // the backend checks
  setConvGeom(C, O, H, W);
  winogradConv(x, <usize>(C * H * W) << 2, u, y, <usize>(O * H * W) << 2, col, N);
}

/** dx = the input gradient of that layer (dy convolved with the flipped, transposed filters)
 * by F(2×2, 3×3), u = winograd_filters(w, …, backward 1); winogradFits must hold. col:
 * conv_scratch_floats(4, …) floats. */
export function conv2d_backward_input_winograd(dy: usize, u: usize, dx: usize, col: usize,
                                               N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                               SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                               OH: i32, OW: i32): void {
  if (!winogradFits(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW)) return;
  setConvGeom(O, C, H, W);
  winogradConv(dy, <usize>(O * H * W) << 2, u, dx, <usize>(C * H * W) << 2, col, N);
}

// ---- weight gradient ----
// y = Aᵀ[Σ_c U[o][c] ⊙ V[c]]A per tile, so dL/dU[o][c] = Σ_{n,t} Z[o] ⊙ V[c] with Z = A·dY·Aᵀ
// (dY the tile's 2×2 block of dy, zero past the plane), and dw[o][c] = Gᵀ·(dL/dU)·G. The batch
// is cut into groups of images fixed by the layer's shape (the backend's rule); per group, block
// by block (tile rows of one image, or several whole images: setWeightGeom): the transforms Z
// (all O channels of dy) and V (the part's input channels), then the group's dU[ξ] (O ×
// channels) += Z[ξ]·V[ξ]ᵀ, one gemm per ξ, summing the block's tiles in increasing order;
// blocks in increasing order, sized by the layer's channels (not the part's). Then
// dw = Gᵀ·(Σ_groups dU)·G, the groups added in increasing order (winograd_weight_output).
// So every dw element has the same summation order at any split, and a part (a group, or a
// block of its channels) transforms each image once: split by channels only, every part
// transformed all of dy again (ResNet-20's 16-channel layers reached 1.6× on 2 threads).

// The weight gradient's blocks hold at least this many tiles: each of its 16 gemms per block
// reads and writes the whole M × K matrix dU[ξ] for a product as long as the block, so blocks
// of a few tiles (a deep layer's, where V and Z of one tile take 16·(K + M) floats and
// BLOCK_BYTES holds only 4–6 of them) made it memory-bound (ResNet-18's 256-channel 8×8 layer
// ran at 0.75× the direct kernel with blocks of 4 tiles).
// @ts-ignore: decorator
@inline const WEIGHT_BLOCK_TILES: i32 = 64;

// setGeom for the weight gradient: blocks of at least WEIGHT_BLOCK_TILES tiles, whole tile rows
// of one image, or whole images where an image has fewer tiles. Depends on the layer's shape
// only (sizeK, M, H, W), so the summation order is the same for every part of a call.
function setWeightGeom(K: i32, M: i32, H: i32, W: i32, sizeK: i32 = K): void {
  setGeom(K, M, H, W, sizeK);
  gImgs = 1;
  gTW = (W + 1) >> 1;
  // A narrow plane takes the dense layout of setConvGeom in blocks of whole images (the gemms
  // take any number of tiles, so none is padding).
  const dense = denseFits();
  if (!dense && gTb >= WEIGHT_BLOCK_TILES) return;
  const tilesPerRow = dense ? gTW : gTWg;
  const perImage = gTH * tilesPerRow;
  if (!dense && perImage >= WEIGHT_BLOCK_TILES) {
    gRows = min(gTH, (WEIGHT_BLOCK_TILES + gTWg - 1) / gTWg);
  } else {
    gRows = gTH;
    gImgs = (WEIGHT_BLOCK_TILES + perImage - 1) / perImage;
  }
  gTb = gImgs * gRows * tilesPerRow;
  if (dense) gDense = gImgs;
  setPlanes();
}

// Scratch floats of the weight gradient for Kb input channels: [P][R][V][Z: 16 matrices M·Tb, gMxi apart]
// [D: M padded dy planes 2·TH × 2·TWg]
// (R and D unused in the dense layout).
function weightScratchFloats(): i64 {
  return <i64>(gHp * gWp) + rowFloats() + <i64>16 * <i64>(gVxi + gMxi) + <i64>gM * <i64>(2 * gTH) * <i64>(2 * gTWg);
}

/** Col scratch floats of the Winograd weight gradient (every input channel in one call, the most a call takes). */
export function winogradWeightScratchFloats(C: i32, H: i32, W: i32, O: i32): i32 {
  setWeightGeom(C, O, H, W);
  return <i32>weightScratchFloats();
}

// The M dy planes of one image into D, zero past H×W (each 2·TH × 2·TWg; D zeroed by the caller
// once, only the H×W corner written here).
function padGradients(dy: usize, D: usize): void {
  const HW = gH * gW, HWd = 4 * gTH * gTWg;
  for (let m = 0; m < gM; m++) {
    for (let h = 0; h < gH; h++) {
      copyRow(D + (<usize>(m * HWd + h * 2 * gTWg) << 2), dy + (<usize>(m * HW + h * gW) << 2), gW);
    }
  }
}

// Z[ξ = 4i + j][m][t - t0] = (A·dY·Aᵀ)[i][j] for the tiles of rows [r0, r1), four at a time.
// A·dY·Aᵀ from a row y0 y1 of dY: rows [y0, y0+y1, y0-y1, -y1]; then the same down the columns.
function gradientTransform(D: usize, Z: usize, r0: i32, r1: i32): void {
  const xiBytes = <usize>gMxi << 2;
  const Wd = 2 * gTWg, HWd = 4 * gTH * gTWg;
  for (let m = 0; m < gM; m++) {
    for (let th = r0; th < r1; th++) {
      const row0 = D + (<usize>(m * HWd + 2 * th * Wd) << 2), row1 = row0 + (<usize>Wd << 2);
      const out = Z + (<usize>(m * gTb + (th - r0) * gTWg) << 2);
      for (let tw = 0; tw < gTWg; tw += 4) {
        const c = <usize>(2 * tw) << 2;
        const a0 = v128.load(row0 + c), b0 = v128.load(row0 + c, 16);
        const a1 = v128.load(row1 + c), b1 = v128.load(row1 + c, 16);
        const y00 = v128.shuffle<f32>(a0, b0, 0, 2, 4, 6), y01 = v128.shuffle<f32>(a0, b0, 1, 3, 5, 7);
        const y10 = v128.shuffle<f32>(a1, b1, 0, 2, 4, 6), y11 = v128.shuffle<f32>(a1, b1, 1, 3, 5, 7);
        const o = out + (<usize>tw << 2);
        gradientColumn(o, xiBytes, 0, y00, y10);
        gradientColumn(o, xiBytes, 1, f32x4.add(y00, y01), f32x4.add(y10, y11));
        gradientColumn(o, xiBytes, 2, f32x4.sub(y00, y01), f32x4.sub(y10, y11));
        gradientColumn(o, xiBytes, 3, f32x4.neg(y01), f32x4.neg(y11));
      }
    }
  }
}

// Z[ξ][m][t0 + th·TW + tw] for one image's tiles in the dense layout, by gradientTransform's
// expressions: dY is the tile's 2×2 block of dy, zero past the plane.
function denseGradient(dy: usize, Z: usize, t0: i32): void {
  const xiBytes = <usize>gMxi << 2;
  const HW = gH * gW;
  for (let m = 0; m < gM; m++) {
    const plane = dy + (<usize>(m * HW) << 2);
    for (let th = 0; th < gTH; th++) {
      for (let tw = 0; tw < gTW; tw++) {
        const h = 2 * th, w = 2 * tw;
        const p = plane + (<usize>(h * gW + w) << 2);
        const right = w + 1 < gW, below = h + 1 < gH;
        const y00 = load<f32>(p), y01: f32 = right ? load<f32>(p, 4) : 0;
        const y10: f32 = below ? load<f32>(p + (<usize>gW << 2)) : 0;
        const y11: f32 = below && right ? load<f32>(p + (<usize>gW << 2), 4) : 0;
        const o = Z + (<usize>(m * gTb + t0 + th * gTW + tw) << 2);
        denseGradientColumn(o, xiBytes, 0, y00, y10);
        denseGradientColumn(o, xiBytes, 1, y00 + y01, y10 + y11);
        denseGradientColumn(o, xiBytes, 2, y00 - y01, y10 - y11);
        denseGradientColumn(o, xiBytes, 3, -y01, -y11);
      }
    }
  }
}

// gradientColumn for one tile.
// @ts-ignore: decorator
@inline
function denseGradientColumn(out: usize, xiBytes: usize, j: i32, w0: f32, w1: f32): void {
  store<f32>(out + <usize>j * xiBytes, w0);
  store<f32>(out + <usize>(4 + j) * xiBytes, w0 + w1);
  store<f32>(out + <usize>(8 + j) * xiBytes, w0 - w1);
  store<f32>(out + <usize>(12 + j) * xiBytes, -w1);
}

// Column j of A·(dY·Aᵀ) from its two rows: [w0, w0 + w1, w0 - w1, -w1] at ξ = j, 4 + j, 8 + j, 12 + j.
// @ts-ignore: decorator
@inline
function gradientColumn(out: usize, xiBytes: usize, j: i32, w0: v128, w1: v128): void {
  v128.store(out + <usize>j * xiBytes, w0);
  v128.store(out + <usize>(4 + j) * xiBytes, f32x4.add(w0, w1));
  v128.store(out + <usize>(8 + j) * xiBytes, f32x4.sub(w0, w1));
  v128.store(out + <usize>(12 + j) * xiBytes, f32x4.neg(w1));
}

// dw[m][k] = Gᵀ·dU[·][m][k]·G for m of [m0, m1), dU the sum of `groups` partial sums (16·M·K
// floats each, consecutive) in increasing order, in f32; the transform in float64, rounded once.
// Gᵀ = [[1, ½, ½, 0], [0, ½, -½, 0], [0, ½, ½, 1]]. The 16·groups floats of one (m, k) lie
// M·K floats apart, a multiple of 4 KiB for most layers: read one k at a time, as 16·groups
// streams advancing 4 bytes a step, they all fell into one L1 set and outran the prefetchers
// (64→64: 1.0 ms a call, an eighth of its weight gradient; 256→256: 2 GB/s). So each matrix's
// run of up to WEIGHT_CHUNK k of one m (contiguous) is first summed over the groups into the
// gemm scratch (free here), one run after the other, and the transform reads the sums there.
// @ts-ignore: decorator
@inline const WEIGHT_CHUNK: i32 = 512;
// Floats between the runs' sums: an odd number of lines, so the transform's 16 reads of one k
// fall into different L1 sets.
// @ts-ignore: decorator
@inline const CHUNK_STRIDE: i32 = WEIGHT_CHUNK + 16;
function weightOutput(dU: usize, groups: i32, dw: usize, m0: i32, m1: i32): void {
  const xi = <usize>(gM * gK) << 2;
  const group = 16 * xi;
  const sums = gemmScratchPtr(); // [ξ][CHUNK_STRIDE], 16·CHUNK_STRIDE floats ≤ PACKA_BYTES
  for (let m = m0; m < m1; m++) {
    for (let k0 = 0; k0 < gK; k0 += WEIGHT_CHUNK) {
      const n = min(WEIGHT_CHUNK, gK - k0);
      const u = dU + (<usize>(m * gK + k0) << 2);
      for (let x = 0; x < 16; x++) groupSums(u + <usize>x * xi, groups, group, sums + (<usize>(x * CHUNK_STRIDE) << 2), n);
      for (let i = 0; i < n; i++) {
        const s = sums + (<usize>i << 2), out = dw + (<usize>((m * gK + k0 + i) * 9) << 2);
        // column j of Gᵀ·dU from ξ = j, 4 + j, 8 + j, 12 + j: (u0 + ½(u1 + u2), ½(u1 - u2), ½(u1 + u2) + u3)
        const u00 = sumAt(s, 0), u01 = sumAt(s, 4), u02 = sumAt(s, 8), u03 = sumAt(s, 12);
        const u10 = sumAt(s, 1), u11 = sumAt(s, 5), u12 = sumAt(s, 9), u13 = sumAt(s, 13);
        const u20 = sumAt(s, 2), u21 = sumAt(s, 6), u22 = sumAt(s, 10), u23 = sumAt(s, 14);
        const u30 = sumAt(s, 3), u31 = sumAt(s, 7), u32 = sumAt(s, 11), u33 = sumAt(s, 15);
        weightRow(out, u00 + 0.5 * (u01 + u02), u10 + 0.5 * (u11 + u12), u20 + 0.5 * (u21 + u22), u30 + 0.5 * (u31 + u32));
        weightRow(out + 12, 0.5 * (u01 - u02), 0.5 * (u11 - u12), 0.5 * (u21 - u22), 0.5 * (u31 - u32));
        weightRow(out + 24, 0.5 * (u01 + u02) + u03, 0.5 * (u11 + u12) + u13, 0.5 * (u21 + u22) + u23, 0.5 * (u31 + u32) + u33);
      }
    }
  }
}

// out[i] = Σ_g p[g·stride + i] for i < n, the groups added in increasing order (four lanes at a
// time: each lane adds its own floats in the same order, so the sums are the scalar ones).
// @ts-ignore: decorator
@inline
function groupSums(p: usize, groups: i32, stride: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q = p + (<usize>i << 2);
    let s = v128.load(q);
    for (let g = 1; g < groups; g++) s = f32x4.add(s, v128.load(q + <usize>g * stride));
    v128.store(out + (<usize>i << 2), s);
  }
  for (; i < n; i++) {
    const q = p + (<usize>i << 2);
    let s = load<f32>(q);
    for (let g = 1; g < groups; g++) s += load<f32>(q + <usize>g * stride);
    store<f32>(out + (<usize>i << 2), s);
  }
}

// Matrix ξ's sum at s (one k of weightOutput's chunk), as float64.
// @ts-ignore: decorator
@inline
function sumAt(s: usize, x: i32): f64 {
  return <f64>load<f32>(s + (<usize>(x * CHUNK_STRIDE) << 2));
}

// One row of q·G: [a + ½(b + c), ½(b - c), ½(b + c) + d].
// @ts-ignore: decorator
@inline
function weightRow(out: usize, a: f64, b: f64, c: f64, d: f64): void {
  store<f32>(out, <f32>(a + 0.5 * (b + c)));
  store<f32>(out, <f32>(0.5 * (b - c)), 4);
  store<f32>(out, <f32>(0.5 * (b + c) + d), 8);
}

/** du = one group's partial sum of the weight gradient of a 3×3 stride-1 pad-1 layer in the
 * Winograd domain (16 matrices O × C, winograd_weight_output turns the groups into dw): the
 * images [n0, n1), for the input channels [c0, c1) only (columns c0..c1 of each matrix), by
 * F(2×2, 3×3); winogradFits must hold. col: conv_scratch_floats(5, …) floats. */
export function conv2d_backward_weight_winograd(dy: usize, x: usize, du: usize, col: usize,
                                                N: i32, C: i32, H: i32, W: i32, O: i32, KH: i32, KW: i32,
                                                SH: i32, SW: i32, PH: i32, PW: i32, DH: i32, DW: i32, G: i32,
                                                OH: i32, OW: i32, n0: i32, n1: i32, c0: i32, c1: i32): void {
  if (!winogradFits(N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW) || c0 >= c1 || n0 >= n1) return;
  setWeightGeom(c1 - c0, O, H, W, C);
  const P = col;
  const R = P + (<usize>(gHp * gWp) << 2);
  const V = R + (<usize>rowFloats() << 2);
  const Z = V + (<usize>(16 * gVxi) << 2);
  const HW = H * W;
  if (gDense > 0) {
    const perImage = gTH * gTW;
    for (let n = n0; n < n1; n += gImgs) {
      const images = min(gImgs, n1 - n);
      for (let j = 0; j < images; j++) {
        denseInput(x + (<usize>(((n + j) * C + c0) * HW) << 2), P, V, j * perImage);
        denseGradient(dy + (<usize>((n + j) * O * HW) << 2), Z, j * perImage);
      }
      const beta: f32 = n == n0 ? 0 : 1;
      for (let xi = 0; xi < 16; xi++) {
        gemm(0, 1, gM, gK, images * perImage, 1, Z + (<usize>(xi * gMxi) << 2), gTb, V + (<usize>(xi * gVxi) << 2), gTb,
             beta, du + (<usize>(xi * gM * C + c0) << 2), C);
      }
    }
    return;
  }
  const D = Z + (<usize>(16 * gMxi) << 2);
  memory.fill(D, 0, <usize>(gM * 4 * gTH * gTWg) << 2);
  for (let n = n0; n < n1; n += gImgs) {
    const images = min(gImgs, n1 - n);
    for (let r0 = 0; r0 < gTH; r0 += gRows) {
      const r1 = min(gTH, r0 + gRows);
      const perImage = (r1 - r0) * gTWg;
      // The block's tiles: image by image, each image's rows [r0, r1) (R and D hold one image,
      // made at its first block; an image spans several blocks only when gImgs is 1).
      for (let j = 0; j < images; j++) {
        if (r0 == 0) {
          padAndRowTransform(x + (<usize>(((n + j) * C + c0) * HW) << 2), P, R);
          padGradients(dy + (<usize>((n + j) * O * HW) << 2), D);
        }
        const at = <usize>(j * perImage) << 2;
        inputTransform(R, V + at, r0, r1);
        gradientTransform(D, Z + at, r0, r1);
      }
      const nt = images * perImage;
      const beta: f32 = n == n0 && r0 == 0 ? 0 : 1;
      for (let xi = 0; xi < 16; xi++) {
        gemm(0, 1, gM, gK, nt, 1, Z + (<usize>(xi * gMxi) << 2), gTb, V + (<usize>(xi * gVxi) << 2), gTb,
             beta, du + (<usize>(xi * gM * C + c0) << 2), C);
      }
    }
  }
}

/** dw ([O][C][3][3]) of output channels [m0, m1) from `groups` partial sums du of
 * conv2d_backward_weight_winograd (16·O·C floats each, consecutive), added in increasing order. */
export function winograd_weight_output(du: usize, groups: i32, dw: usize, C: i32, O: i32, m0: i32, m1: i32): void {
  setGeom(C, O, 1, 1);
  weightOutput(du, groups, dw, max(0, m0), min(O, m1));
}
