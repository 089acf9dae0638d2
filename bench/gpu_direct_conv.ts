/**
 * A candidate convolution forward kernel, kept in the bench until a real GPU has timed it: a
 * direct convolution without workgroup memory or barriers, the shape jax-js 0.1.25 generates
 * (docs/performance.md, "What jax-js does differently"). Each thread computes 4 output
 * channels × 4 adjacent output columns of one output row in 16 accumulators, looping over the
 * input channels and the filter taps and reading x and w straight from their storage buffers
 * (a GPU serves the repeated reads from its L1 cache, a CPU adapter from its data cache).
 * Groups = 1; O and OW multiples of 4. The products are summed in the order of the tiled GEMM
 * (ascending k = (c, kh, kw)), so results match it bit for bit where no FMA contraction differs.
 * bench/gpu_gemm_variants.ts times it beside the GEMM tiles on the forward shapes ("direct").
 */
import type { GpuBuffer, GpuContext } from "../gpu/device.ts";
import { foldedGrid } from "../gpu/device.ts";
import { entryPoint, type KernelSpec, LINEAR_WORKGROUP, read, write } from "../gpu/kernel.ts";
import type { ConvConstants } from "../gpu/kernels/gemm.ts";

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

const GEOMETRY = ["C", "H", "W", "O", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "OH", "OW"] as const;
const OVERRIDES = GEOMETRY.map((name) => [name, "u32"] as const);

/** x[n, c, ih, iw] for output column 4·q + j at tap (kh, kw), 0 in the padding. */
const body = `
  let q = t % (OW / 4u);
  let oh = (t / (OW / 4u)) % OH;
  let og = (t / (OW / 4u * OH)) % (O / 4u);
  let n = t / (OW / 4u * OH * (O / 4u));
  let o0 = og * 4u;
${range(16).map((a) => `  var acc${a} = 0.0;`).join("\n")}
  for (var c = 0u; c < C; c = c + 1u) {
    let xPlane = (n * C + c) * H * W;
    for (var kh = 0u; kh < KH; kh = kh + 1u) {
      let ih = i32(oh * SH + kh * DH) - i32(PH);
      let rowIn = ih >= 0 && ih < i32(H);
      for (var kw = 0u; kw < KW; kw = kw + 1u) {
        let wAt = (o0 * C + c) * KH * KW + kh * KW + kw;
${range(4).map((i) => `        let w${i} = w[wAt + ${i}u * C * KH * KW];`).join("\n")}
${range(4).map((j) => `        let iw${j} = i32((4u * q + ${j}u) * SW + kw * DW) - i32(PW);
        var x${j} = 0.0;
        if (rowIn && iw${j} >= 0 && iw${j} < i32(W)) { x${j} = x[xPlane + u32(ih) * W + u32(iw${j})]; }`).join("\n")}
${range(4).flatMap((i) => range(4).map((j) => `        acc${i * 4 + j} = acc${i * 4 + j} + w${i} * x${j};`)).join("\n")}
      }
    }
  }
${range(4).map((i) => `  let yRow${i} = ((n * O + o0 + ${i}u) * OH + oh) * OW + 4u * q;
${range(4).map((j) => `  y[yRow${i} + ${j}u] = acc${i * 4 + j};`).join("\n")}`).join("\n")}`;

const kernel: KernelSpec = {
  key: "conv2d_forward_direct4x4",
  params: [["n", "u32"]],
  bindings: [read("x"), read("w"), write("y")],
  overrides: OVERRIDES,
  code: entryPoint(LINEAR_WORKGROUP, "t", "P.n", body),
};

/** Whether the candidate covers this layer. */
export function directConvApplies(g: ConvConstants): boolean {
  return g.Cg === g.C && g.O % 4 === 0 && g.OW % 4 === 0;
}

/** Record the candidate on buffers [x, w, y] for a batch of `batch` images. */
export function dispatchDirectConv(ctx: GpuContext, g: ConvConstants, batch: number, buffers: readonly GpuBuffer[]): void {
  const threads = batch * (g.O / 4) * g.OH * (g.OW / 4);
  const constants = Object.fromEntries(GEOMETRY.map((name) => [name, g[name]]));
  ctx.dispatch(kernel, {
    params: { n: threads }, constants, buffers,
    grid: foldedGrid(Math.ceil(threads / LINEAR_WORKGROUP), ctx.limits.maxComputeWorkgroupsPerDimension),
  });
}
