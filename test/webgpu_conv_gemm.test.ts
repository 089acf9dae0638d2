/**
 * The implicit-GEMM convolutions of gpu/kernels/gemm.ts against the explicit GEMM, bit for
 * bit: the forward pass, the input gradient and the weight gradient (K unsplit) on the same
 * tile as the plain GEMM kernel run on matrices built on the host (the input's patch matrix,
 * the gathered output gradient, the weights rearranged). Both kernels come from one template
 * and sum each output over ascending k, so anything but the same bits means the convolution
 * read a wrong element, however small its effect: the index math (the geometry's pipeline
 * constants, each staged unit's tap or position) is checked exactly, where the comparison
 * with the CPU (test/webgpu.test.ts) allows float32 reordering noise.
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import type { GpuBuffer, GpuContext } from "../gpu/device.ts";
import {
  CONV_BACKWARD_INPUT, CONV_BACKWARD_WEIGHT, CONV_FORWARD, type ConvConstants, dispatchGemm, GEMM, type GemmShape,
  type TileName,
} from "../gpu/kernels/gemm.ts";
import { gpuTest, randomValues } from "./support/gpu.ts";

interface Geometry extends ConvConstants {
  N: number;
  G: number;
}

function geometry(x: number[], w: number[], stride: [number, number], pad: [number, number], dilation: [number, number], G: number): Geometry {
  const [N, C, H, W] = x, [O, , KH, KW] = w;
  const OH = Math.floor((H + 2 * pad[0] - dilation[0] * (KH - 1) - 1) / stride[0]) + 1;
  const OW = Math.floor((W + 2 * pad[1] - dilation[1] * (KW - 1) - 1) / stride[1]) + 1;
  return {
    N, G, C, H, W, O, KH, KW, SH: stride[0], SW: stride[1], PH: pad[0], PW: pad[1], DH: dilation[0], DW: dilation[1],
    OH, OW, Cg: C / G, Og: O / G,
  };
}

const CASES: [string, Geometry][] = [
  ["3×3 stride 2 pad 1", geometry([2, 4, 9, 8], [6, 4, 3, 3], [2, 2], [1, 1], [1, 1], 1)],
  ["groups 2, dilation 2, stride (2,1), pad (2,1)", geometry([2, 4, 10, 9], [6, 2, 3, 2], [2, 1], [2, 1], [2, 2], 2)],
  ["1×1 stride 2", geometry([2, 8, 8, 8], [16, 8, 1, 1], [2, 2], [0, 0], [1, 1], 1)],
  ["20 channels, 3×3 pad 1, 17×17", geometry([2, 20, 17, 17], [20, 20, 3, 3], [1, 1], [1, 1], [1, 1], 1)],
];
const TILES_CHECKED: TileName[] = ["16x512", "16x256", "16x32", "64x64"];

/** The element of patch matrix row k = (c, kh, kw), column q = (n, oh, ow) of group g; 0 in the padding. */
function patch(x: Float32Array, s: Geometry, g: number, k: number, q: number): number {
  const { KH, KW, OH, OW } = s;
  const c = Math.floor(k / (KH * KW)), kh = Math.floor(k / KW) % KH, kw = k % KW;
  const n = Math.floor(q / (OH * OW)), oh = Math.floor(q / OW) % OH, ow = q % OW;
  const ih = oh * s.SH + kh * s.DH - s.PH, iw = ow * s.SW + kw * s.DW - s.PW;
  return ih < 0 || iw < 0 || ih >= s.H || iw >= s.W ? 0 : x[((n * s.C + g * s.Cg + c) * s.H + ih) * s.W + iw];
}

/** dy at the output position input pixel col = (n, ih, iw) took tap k = (o, kh, kw) from, 0 where there is none. */
function gatheredGradient(dy: Float32Array, s: Geometry, g: number, k: number, col: number): number {
  const { KH, KW, H, W } = s;
  const o = Math.floor(k / (KH * KW)), kh = Math.floor(k / KW) % KH, kw = k % KW;
  const n = Math.floor(col / (H * W)), ih = Math.floor(col / W) % H, iw = col % W;
  const th = ih + s.PH - kh * s.DH, tw = iw + s.PW - kw * s.DW;
  if (th < 0 || tw < 0 || th % s.SH !== 0 || tw % s.SW !== 0 || th / s.SH >= s.OH || tw / s.SW >= s.OW) return 0;
  return dy[((n * s.O + g * s.Og + o) * s.OH + th / s.SH) * s.OW + tw / s.SW];
}

function matrix(rows: number, cols: number, at: (r: number, c: number) => number): Float32Array {
  const m = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) m[r * cols + c] = at(r, c);
  return m;
}

function upload(ctx: GpuContext, values: Float32Array): GpuBuffer {
  const b = ctx.alloc(values.length);
  ctx.write(b, values);
  return b;
}

/** C = A·B (M×K by K×N, B transposed when given N×K) by the plain GEMM kernel on `tile`. */
async function explicitGemm(ctx: GpuContext, a: Float32Array, b: Float32Array, M: number, N: number, K: number,
  transB: boolean, tile: TileName): Promise<Float32Array> {
  const [ab, bb, cb] = [upload(ctx, a), upload(ctx, b), ctx.alloc(M * N)];
  dispatchGemm(ctx, GEMM, { M, N, K, groups: 1 }, [ab, bb, cb], { alpha: 1, beta: 0 }, { TRANS_A: false, TRANS_B: transB },
    { tile, splits: 1 });
  const c = await ctx.read(cb);
  for (const x of [ab, bb, cb]) ctx.free(x);
  return c;
}

/** One convolution pass by its kernel on `tile`, K unsplit. */
async function convolution(ctx: GpuContext, shape: GemmShape, s: Geometry, M: number, N: number, K: number,
  inputs: [Float32Array, Float32Array], outputLength: number, tile: TileName): Promise<Float32Array> {
  const { N: _batch, G, ...constants } = s;
  const [b0, b1, out] = [upload(ctx, inputs[0]), upload(ctx, inputs[1]), ctx.alloc(outputLength)];
  dispatchGemm(ctx, shape, { M, N, K, groups: G }, [b0, b1, out], {}, constants, { tile, splits: 1 });
  const y = await ctx.read(out);
  for (const x of [b0, b1, out]) ctx.free(x);
  return y;
}

for (const [name, s] of CASES) {
  gpuTest(`webgpu: conv2d ${name}: forward, input and weight gradients are the explicit GEMM's bits on every tile`, async (gpu) => {
    const ctx = gpu.context;
    const { N, C, H, W, O, KH, KW, OH, OW, Cg, Og, G } = s;
    const khw = KH * KW, positions = N * OH * OW, pixels = N * H * W;
    const x = randomValues(N * C * H * W, 61), w = randomValues(O * Cg * khw, 62), dy = randomValues(N * O * OH * OW, 63);
    for (const tile of TILES_CHECKED) {
      const y = await convolution(ctx, CONV_FORWARD, s, Og, positions, Cg * khw, [x, w], dy.length, tile);
      const dx = await convolution(ctx, CONV_BACKWARD_INPUT, s, Cg, pixels, Og * khw, [dy, w], x.length, tile);
      const dw = await convolution(ctx, CONV_BACKWARD_WEIGHT, s, Og, Cg * khw, positions, [dy, x], w.length, tile);
      for (let g = 0; g < G; g++) {
        const patches = matrix(Cg * khw, positions, (k, q) => patch(x, s, g, k, q));
        const weights = w.subarray(g * Og * Cg * khw, (g + 1) * Og * Cg * khw);
        const dyRows = matrix(Og, positions, (o, q) => dy[(Math.floor(q / (OH * OW)) * O + g * Og + o) * OH * OW + q % (OH * OW)]);
        const label = `${name}, group ${g}, tile ${tile}`;

        const yExpected = await explicitGemm(ctx, weights, patches, Og, positions, Cg * khw, false, tile);
        const yGot = matrix(Og, positions, (o, q) => y[(Math.floor(q / (OH * OW)) * O + g * Og + o) * OH * OW + q % (OH * OW)]);
        assert.equal([...yGot], [...yExpected], `${label}: forward`);

        const wByTap = matrix(Cg, Og * khw, (c, k) => w[((g * Og + Math.floor(k / khw)) * Cg + c) * khw + k % khw]);
        const gathered = matrix(Og * khw, pixels, (k, col) => gatheredGradient(dy, s, g, k, col));
        const dxExpected = await explicitGemm(ctx, wByTap, gathered, Cg, pixels, Og * khw, false, tile);
        const dxGot = matrix(Cg, pixels, (c, col) => dx[(Math.floor(col / (H * W)) * C + g * Cg + c) * H * W + col % (H * W)]);
        assert.equal([...dxGot], [...dxExpected], `${label}: input gradient`);

        const dwExpected = await explicitGemm(ctx, dyRows, patches, Og, Cg * khw, positions, true, tile);
        assert.equal([...dw.subarray(g * Og * Cg * khw, (g + 1) * Og * Cg * khw)], [...dwExpected], `${label}: weight gradient`);
      }
    }
  });
}

test.run();
