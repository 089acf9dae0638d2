/**
 * WGSL for everything GEMM-shaped: the plain GEMM and the three convolution passes, all
 * generated from one tiled template. A 256-thread workgroup computes a (16·TM)×64 tile of
 * C, staging 16-deep slices of A and B in workgroup memory; each thread owns TM×4 outputs.
 * A kernel only says how to read A(row, k), B(k, col) and store C(row, col) — so the
 * convolutions are implicit GEMMs: forward and weight-gradient gather input patches on the
 * fly (no im2col buffer), the input gradient gathers the output gradient at the positions
 * each input pixel contributed to (no col2im scatter). Workgroup z is the convolution group.
 */
import type { KernelSpec, ScalarType, StorageBinding } from "../kernel.ts";
import { ENTRY_ARGS, read, write } from "../kernel.ts";

const TILE_K = 16;
const TILE_N = 64;
const THREADS = 256;

interface GemmShape {
  key: string;
  /** Parameters besides the GEMM extents gM, gN, gK (which every kernel gets first). */
  params: readonly (readonly [string, ScalarType])[];
  bindings: readonly StorageBinding[];
  overrides?: KernelSpec["overrides"];
  /** WGSL defining loadA(row, k, z) -> f32, loadB(k, col, z) -> f32 and storeC(row, col, z, acc). */
  access: string;
  /** WGSL booleans: whether consecutive k are adjacent in memory for A / for B (picks the coalesced tile-load order). */
  aKFastest: string;
  bKFastest: string;
}

/** Rows per thread for a GEMM with M rows: narrow outputs (a 16-channel conv) get narrow tiles. */
export function rowsPerThread(M: number): 1 | 2 | 4 {
  return M <= 16 ? 1 : M <= 32 ? 2 : 4;
}

/** Workgroups for an M×N output: x over column tiles, y over row tiles, z over groups. */
export function gemmGrid(M: number, N: number, groups: number): [number, number, number] {
  return [Math.ceil(N / TILE_N), Math.ceil(M / (16 * rowsPerThread(M))), groups];
}

function tiledGemm(shape: GemmShape, TM: number): KernelSpec {
  const BM = 16 * TM;
  return {
    key: `${shape.key}_tm${TM}`,
    params: [["gM", "u32"], ["gN", "u32"], ["gK", "u32"], ...shape.params],
    bindings: shape.bindings,
    overrides: shape.overrides,
    code: `${shape.access}
var<workgroup> tileA: array<f32, ${TILE_K * BM}>;
var<workgroup> tileB: array<f32, ${TILE_K * TILE_N}>;

@compute @workgroup_size(${THREADS})
fn main(${ENTRY_ARGS}) {
  let z = wid.z;
  let rowBase = wid.y * ${BM}u;
  let colBase = wid.x * ${TILE_N}u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<f32, ${TM * 4}>;
  for (var k0 = 0u; k0 < P.gK; k0 = k0 + ${TILE_K}u) {
    for (var l = 0u; l < ${TM}u; l = l + 1u) {
      let e = lid + ${THREADS}u * l;
      var m = e % ${BM}u;
      var kk = e / ${BM}u;
      if (${shape.aKFastest}) { m = e / ${TILE_K}u; kk = e % ${TILE_K}u; }
      var v = 0.0;
      if (rowBase + m < P.gM && k0 + kk < P.gK) { v = loadA(rowBase + m, k0 + kk, z); }
      tileA[kk * ${BM}u + m] = v;
    }
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = lid + ${THREADS}u * l;
      var n = e % ${TILE_N}u;
      var kk = e / ${TILE_N}u;
      if (${shape.bKFastest}) { n = e / ${TILE_K}u; kk = e % ${TILE_K}u; }
      var v = 0.0;
      if (colBase + n < P.gN && k0 + kk < P.gK) { v = loadB(k0 + kk, colBase + n, z); }
      tileB[kk * ${TILE_N}u + n] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk = kk + 1u) {
      var a: array<f32, ${TM}>;
      var b: array<f32, 4>;
      for (var i = 0u; i < ${TM}u; i = i + 1u) { a[i] = tileA[kk * ${BM}u + ty + 16u * i]; }
      for (var j = 0u; j < 4u; j = j + 1u) { b[j] = tileB[kk * ${TILE_N}u + tx + 16u * j]; }
      for (var i = 0u; i < ${TM}u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) { acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${TM}u; i = i + 1u) {
    let row = rowBase + ty + 16u * i;
    for (var j = 0u; j < 4u; j = j + 1u) {
      let col = colBase + tx + 16u * j;
      if (row < P.gM && col < P.gN) { storeC(row, col, z, acc[i * 4u + j]); }
    }
  }
}`,
  };
}

/** The template instantiated for each rows-per-thread variant, picked by `rowsPerThread(M)`. */
export type GemmFamily = Record<1 | 2 | 4, KernelSpec>;

function family(shape: GemmShape): GemmFamily {
  return { 1: tiledGemm(shape, 1), 2: tiledGemm(shape, 2), 4: tiledGemm(shape, 4) };
}

/** C = alpha·op(A)·op(B) + beta·C, row-major; C is not read when beta = 0 (NaN-safe). */
export const gemmKernels = family({
  key: "gemm",
  params: [["alpha", "f32"], ["beta", "f32"]],
  bindings: [read("A"), read("B"), write("C")],
  overrides: [["TRANS_A", "bool"], ["TRANS_B", "bool"]],
  access: `
fn loadA(row: u32, k: u32, z: u32) -> f32 {
  if (TRANS_A) { return A[k * P.gM + row]; }
  return A[row * P.gK + k];
}
fn loadB(k: u32, col: u32, z: u32) -> f32 {
  if (TRANS_B) { return B[col * P.gK + k]; }
  return B[k * P.gN + col];
}
fn storeC(row: u32, col: u32, z: u32, acc: f32) {
  let idx = row * P.gN + col;
  if (P.beta == 0.0) { C[idx] = P.alpha * acc; } else { C[idx] = P.alpha * acc + P.beta * C[idx]; }
}`,
  aKFastest: "!TRANS_A",
  bKFastest: "TRANS_B",
});

/** Convolution geometry as uniforms (ConvGeometry; `batch` is its N, Cg/Og the per-group channels). */
const CONV_PARAMS = [
  "batch", "C", "H", "W", "O", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "OH", "OW", "Cg", "Og",
].map((n) => [n, "u32"] as const);

/**
 * The input patch matrix of group g without materialising it: element (k, q) with
 * k = (c, kh, kw) over the group's filter taps and q = (n, oh, ow) over output positions.
 */
const IM2COL = `
fn im2col(k: u32, q: u32, g: u32) -> f32 {
  let khw = P.KH * P.KW;
  let c = k / khw;
  let r = k % khw;
  let ohw = P.OH * P.OW;
  let n = q / ohw;
  let p = q % ohw;
  let ih = i32((p / P.OW) * P.SH + (r / P.KW) * P.DH) - i32(P.PH);
  let iw = i32((p % P.OW) * P.SW + (r % P.KW) * P.DW) - i32(P.PW);
  if (ih < 0 || iw < 0 || ih >= i32(P.H) || iw >= i32(P.W)) { return 0.0; }
  return x[((n * P.C + g * P.Cg + c) * P.H + u32(ih)) * P.W + u32(iw)];
}`;

/** y[n, g·Og+o, p] = Σ_k w[g·Og+o, k] · patches(k, (n, p)): M = Og, N = batch·OH·OW, K = Cg·KH·KW. */
export const convForwardKernels = family({
  key: "conv2d_forward",
  params: CONV_PARAMS,
  bindings: [read("x"), read("w"), write("y")],
  access: `${IM2COL}
fn loadA(row: u32, k: u32, g: u32) -> f32 { return w[(g * P.Og + row) * P.gK + k]; }
fn loadB(k: u32, col: u32, g: u32) -> f32 { return im2col(k, col, g); }
fn storeC(row: u32, col: u32, g: u32, acc: f32) {
  let ohw = P.OH * P.OW;
  y[((col / ohw) * P.O + g * P.Og + row) * ohw + col % ohw] = acc;
}`,
  aKFastest: "true",
  bKFastest: "false",
});

/**
 * dw[g·Og+o, k] = Σ_(n,p) dy[n, g·Og+o, p] · patches(k, (n, p)): the batch is the GEMM's
 * reduction dimension (M = Og, N = Cg·KH·KW, K = batch·OH·OW).
 */
export const convBackwardWeightKernels = family({
  key: "conv2d_backward_weight",
  params: CONV_PARAMS,
  bindings: [read("dy"), read("x"), write("dw")],
  access: `${IM2COL}
fn loadA(row: u32, q: u32, g: u32) -> f32 {
  let ohw = P.OH * P.OW;
  return dy[((q / ohw) * P.O + g * P.Og + row) * ohw + q % ohw];
}
fn loadB(q: u32, col: u32, g: u32) -> f32 { return im2col(col, q, g); }
fn storeC(row: u32, col: u32, g: u32, acc: f32) { dw[(g * P.Og + row) * P.gN + col] = acc; }`,
  aKFastest: "true",
  bKFastest: "true",
});

/**
 * dx[n, g·Cg+c, ih, iw] = Σ_(o,kh,kw) w[g·Og+o, c, kh, kw] · dy[n, g·Og+o, oh, ow] over the
 * taps whose output position (oh, ow) = ((ih+PH−kh·DH)/SH, (iw+PW−kw·DW)/SW) is whole and in
 * range: M = Cg, N = batch·H·W, K = Og·KH·KW. Every dx element is written, so no zeroing.
 */
export const convBackwardInputKernels = family({
  key: "conv2d_backward_input",
  params: CONV_PARAMS,
  bindings: [read("dy"), read("w"), write("dx")],
  access: `
fn loadA(c: u32, k: u32, g: u32) -> f32 {
  let khw = P.KH * P.KW;
  return w[((g * P.Og + k / khw) * P.Cg + c) * khw + k % khw];
}
fn loadB(k: u32, col: u32, g: u32) -> f32 {
  let khw = P.KH * P.KW;
  let o = k / khw;
  let r = k % khw;
  let hw = P.H * P.W;
  let s = col % hw;
  let th = i32(s / P.W + P.PH) - i32((r / P.KW) * P.DH);
  let tw = i32(s % P.W + P.PW) - i32((r % P.KW) * P.DW);
  if (th < 0 || tw < 0) { return 0.0; }
  let uh = u32(th);
  let uw = u32(tw);
  if (uh % P.SH != 0u || uw % P.SW != 0u) { return 0.0; }
  let oh = uh / P.SH;
  let ow = uw / P.SW;
  if (oh >= P.OH || ow >= P.OW) { return 0.0; }
  return dy[(((col / hw) * P.O + g * P.Og + o) * P.OH + oh) * P.OW + ow];
}
fn storeC(c: u32, col: u32, g: u32, acc: f32) {
  let hw = P.H * P.W;
  dx[((col / hw) * P.C + g * P.Cg + c) * hw + col % hw] = acc;
}`,
  aKFastest: "true",
  bKFastest: "false",
});
