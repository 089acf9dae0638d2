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

// The MR×NR tile over kc steps of k, summed from zero in increasing k, into `tile` (MR rows of
// NR floats). Step p multiplies four A values, at a and the next three floats, by the NR
// values of the packed B strip at pb + 32·p. A comes from a packed MR-row strip (indirect
// false: a = aBase + 16·p) or, for the direct convolution, from four adjacent pixels of a
// padded image (indirect: a = aBase + the p-th int of the tap-offset table at `offsets`).
// Every call site passes a literal `indirect`, which the optimiser folds away after inlining.
// @ts-ignore: decorator
@inline
export function multiplyTile(kc: i32, aBase: usize, offsets: usize, indirect: bool, pb: usize, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const packed = !indirect;
  let pa = aBase;
  let off = offsets;
  const end = packed ? aBase + (<usize>kc << 4) : offsets + (<usize>kc << 2);
  while ((packed ? pa : off) < end) {
    const a0 = packed ? pa : aBase + <usize>load<i32>(off);
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(a0);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(a0, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(a0, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(a0, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    if (packed) pa += 16;
    else off += 4;
    pb += 32;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
}
