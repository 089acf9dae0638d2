// The register block that every product in the kernels is made of, and the blocking around it,
// defined once so that gemm.ts and conv.ts (which must give the same bits for the same sums)
// cannot drift apart.
//
// Blocking (GotoBLAS): C is computed in MR×NR tiles; K in blocks of KC, in increasing order;
// A is packed into MR-row strips of at most MC rows, B into NR-column strips of at most NC
// columns. The packing scratch (one area per thread, set by set_gemm_scratch) is laid out as
// [packA: MC·KC f32][packB: KC·NC f32][tile: MR·NR f32].

import { madd } from "./simd";

// @ts-ignore: decorator
@inline export const MR: i32 = 4;
// @ts-ignore: decorator
@inline export const NR: i32 = 8;
// @ts-ignore: decorator
@inline export const KC: i32 = 256;
// @ts-ignore: decorator
@inline export const MC: i32 = 128;
// @ts-ignore: decorator
@inline export const NC: i32 = 512;

// @ts-ignore: decorator
@inline export const PACKA_BYTES: i32 = MC * KC * 4;
// @ts-ignore: decorator
@inline export const PACKB_BYTES: i32 = KC * NC * 4;
// @ts-ignore: decorator
@inline export const TILE_BYTES: i32 = MR * NR * 4;

// Whether the plain build's register tile loads its four A values with one v128.load and
// shuffles (true) or with four splat loads (false, the default); set per instance by
// set_tile_loads from the start-up timing probe (src/backend/cpu/tile_loads.ts). The relaxed
// build always takes the shuffles.
let shuffledALoads: bool = false;

/** Load the plain build's A values by one load and shuffles (1) or by four splat loads (0). */
export function set_tile_loads(shuffled: i32): void {
  shuffledALoads = shuffled != 0;
}

/** The shape set_tile_loads set on this instance (1: shuffles); tests read it back from every thread. */
export function tile_loads(): i32 {
  return shuffledALoads ? 1 : 0;
}

// The MR×NR tile over kc steps of k, summed from zero in increasing k, into `tile` (MR rows of
// NR floats). Step p multiplies four A values, at a and the next three floats, by the NR
// values of the packed B strip at pb + 32·p. A comes at a fixed stride (indirect false:
// a = aBase + aStride·p; a packed MR-row strip has aStride 16, the Winograd products' V one
// tile block) or, for the direct convolution, from four adjacent pixels of a padded image
// (indirect: a = aBase + the p-th int of the tap-offset table at `offsets`). Every call site
// passes a literal `indirect`, which the optimiser folds away after inlining.
// The four A values of a step are splat-loaded one by one, or loaded with one v128.load and
// splatted by shuffles. Which is faster depends on the engine: under a V8 without a wasm trap
// handler (Deno) every load carries an explicit bounds check, and one load instead of four made
// a ResNet-20 step 4–12 % faster there; under Node the plain build's separate multiplies and
// adds fill the pipes the shuffles need, and the shuffles cost it 3–8 % (docs/performance.md,
// "Under Deno"). So the relaxed build (fused multiply-adds, shuffle slots free) always
// shuffles, and the plain build takes what the start-up probe measured faster here. Same
// values, same multiply-adds in the same order: the same bits either way.
// @ts-ignore: decorator
@inline
export function multiplyTile(kc: i32, aBase: usize, aStride: usize, offsets: usize, indirect: bool, pb: usize, tile: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD || shuffledALoads) multiplyTileShaped(kc, aBase, aStride, offsets, indirect, true, pb, tile);
  else multiplyTileShaped(kc, aBase, aStride, offsets, indirect, false, pb, tile);
}

// multiplyTile with the A loads' shape a literal (`shuffled`), folded away after inlining.
// @ts-ignore: decorator
@inline
export function multiplyTileShaped(kc: i32, aBase: usize, aStride: usize, offsets: usize, indirect: bool, shuffled: bool,
                                   pb: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const packed = !indirect;
  let pa = aBase;
  let off = offsets;
  const end = packed ? aBase + <usize>kc * aStride : offsets + (<usize>kc << 2);
  while ((packed ? pa : off) < end) {
    const a0 = packed ? pa : aBase + <usize>load<i32>(off);
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    const av = shuffled ? v128.load(a0) : f32x4.splat(0);
    let a = shuffled ? v128.shuffle<f32>(av, av, 0, 0, 0, 0) : v128.load32_splat(a0);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = shuffled ? v128.shuffle<f32>(av, av, 1, 1, 1, 1) : v128.load32_splat(a0, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = shuffled ? v128.shuffle<f32>(av, av, 2, 2, 2, 2) : v128.load32_splat(a0, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = shuffled ? v128.shuffle<f32>(av, av, 3, 3, 3, 3) : v128.load32_splat(a0, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    if (packed) pa += aStride;
    else off += 4;
    pb += 32;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
}

// The register tile of the direct convolution (conv.ts): 4 adjacent pixels (at q + off[p] and
// the next three floats) × 8 channels over kc taps, stored by storeTile. Adjacent pixels let
// the four loads of a tap share one address with immediate offsets.
// @ts-ignore: decorator
@inline
export function directTile(kc: i32, offs: usize, q: usize, pb: usize, c: usize, ldc: i32, mode: i32,
                    mr: i32, nr: i32, tile: usize): void {
  multiplyTile(kc, q, 0, offs, true, pb, tile);
  storeTile(c, ldc, mode, mr, nr, tile);
}

// directTile with the taps `aStride` bytes apart (q + aStride·p), no offset table to load:
// the Winograd products, whose reduction channels are one block of tiles apart.
// @ts-ignore: decorator
@inline
export function stridedTile(kc: i32, q: usize, aStride: usize, pb: usize, c: usize, ldc: i32, mode: i32,
                            mr: i32, nr: i32, tile: usize): void {
  multiplyTile(kc, q, aStride, 0, false, pb, tile);
  storeTile(c, ldc, mode, mr, nr, tile);
}

// The tile buffer's MR×NR sums into c, transposed: c[j*ldc + i] (mode 0) or += (mode 2), for
// j < nr channels and i < mr pixels (a short tile goes through the tile buffer; at a row's end
// its extra pixels were read past the row, into the next one or the scratch's slack, and are
// dropped here).
// @ts-ignore: decorator
@inline
function storeTile(c: usize, ldc: i32, mode: i32, mr: i32, nr: i32, tile: usize): void {
  if (nr == NR && mr == MR) {
    const ld = <usize>ldc << 2;
    storeT4(c, ld, v128.load(tile), v128.load(tile, 32), v128.load(tile, 64), v128.load(tile, 96), mode);
    storeT4(c + ld * 4, ld, v128.load(tile, 16), v128.load(tile, 48), v128.load(tile, 80), v128.load(tile, 112), mode);
  } else {
    for (let j = 0; j < nr; j++) {
      for (let i = 0; i < mr; i++) {
        const cp = c + (<usize>(j * ldc + i) << 2);
        const t = load<f32>(tile + (<usize>(i * NR + j) << 2));
        store<f32>(cp, mode == 0 ? t : load<f32>(cp) + t);
      }
    }
  }
}

// @ts-ignore: decorator
@inline
function storeT4(c: usize, ld: usize, r0: v128, r1: v128, r2: v128, r3: v128, mode: i32): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  let v0 = v128.shuffle<f32>(t0, t1, 0, 1, 4, 5);
  let v1 = v128.shuffle<f32>(t0, t1, 2, 3, 6, 7);
  let v2 = v128.shuffle<f32>(t2, t3, 0, 1, 4, 5);
  let v3 = v128.shuffle<f32>(t2, t3, 2, 3, 6, 7);
  if (mode == 2) {
    v0 = f32x4.add(v128.load(c), v0);
    v1 = f32x4.add(v128.load(c + ld), v1);
    v2 = f32x4.add(v128.load(c + ld * 2), v2);
    v3 = f32x4.add(v128.load(c + ld * 3), v3);
  }
  v128.store(c, v0);
  v128.store(c + ld, v1);
  v128.store(c + ld * 2, v2);
  v128.store(c + ld * 3, v3);
}
