/**
 * The first GEMM template of gpu/kernels/gemm.ts, kept only as the baseline of
 * bench/gpu_gemm_variants.ts (speed and results): 256 threads, a (16·TM)×64 tile of C, TILE_K
 * 16, each thread TM×4 outputs in a private array indexed in loops, TM picked by M. It reads
 * the same shapes (loadA/loadB/storeC) as the current template; K is never split (z = group).
 */
import type { GpuBuffer, GpuContext } from "../gpu/device.ts";
import { ENTRY_ARGS, type KernelSpec } from "../gpu/kernel.ts";
import type { GemmExtents, GemmShape } from "../gpu/kernels/gemm.ts";

const TILE_K = 16;
const TILE_N = 64;
const THREADS = 256;

function rowsPerThread(M: number): 1 | 2 | 4 {
  return M <= 16 ? 1 : M <= 32 ? 2 : 4;
}

function baselineKernel(shape: GemmShape, TM: number): KernelSpec {
  const BM = 16 * TM;
  return {
    key: `${shape.key}_baseline_tm${TM}`,
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
      if (rowBase + m < P.gM && k0 + kk < P.gK) { v = loadA(kPartA(k0 + kk, z), rowBase + m, z); }
      tileA[kk * ${BM}u + m] = v;
    }
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = lid + ${THREADS}u * l;
      var n = e % ${TILE_N}u;
      var kk = e / ${TILE_N}u;
      if (${shape.bKFastest}) { n = e / ${TILE_K}u; kk = e % ${TILE_K}u; }
      var v = 0.0;
      if (colBase + n < P.gN && k0 + kk < P.gK) { v = loadB(kPartB(k0 + kk, z), colBase + n, z); }
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

const kernels = new Map<string, KernelSpec>();

/** Record the baseline kernel for a GEMM-shaped call (buffers and params as dispatchGemm takes them). */
export function dispatchBaseline(
  ctx: GpuContext, shape: GemmShape, e: GemmExtents, buffers: readonly GpuBuffer[], params: Record<string, number>,
  constants?: Record<string, number | boolean>,
): void {
  const TM = rowsPerThread(e.M);
  const key = `${shape.key}_${TM}`;
  let spec = kernels.get(key);
  if (!spec) kernels.set(key, (spec = baselineKernel(shape, TM)));
  ctx.dispatch(spec, {
    params: { gM: e.M, gN: e.N, gK: e.K, ...params }, constants, buffers,
    grid: [Math.ceil(e.N / TILE_N), Math.ceil(e.M / (16 * TM)), e.groups],
  });
}
