/// <reference types="@webgpu/types" />
/**
 * The GEMM kernel variants on one adapter (Deno; a stage of bench/gpu-check.sh): the first
 * template (bench/gemm_baseline.ts), the default plan of gpu/kernels/gemm.ts ("auto"), and
 * every tile with K unsplit and, for the weight gradient, with its planned split ("+split"),
 * on sgemm n³ and on the GEMMs of ResNet-20's convolutions at a batch (forward, input
 * gradient, weight gradient; the stem's input gradient is never computed). Each is timed
 * on the host around submit-and-wait, in batches of calls long enough to hide the round
 * trip (median of 3 batches), and its result checked against the baseline's:
 * max |variant − baseline| / max |baseline|. Prints GFLOP/s per (shape, variant) as a table
 * on stderr and JSON on stdout; stops starting new shapes after --budget-s seconds.
 *
 * On the forward shapes it also times a candidate that is not a GEMM, bench/gpu_direct_conv.ts's
 * barrier-free direct convolution ("direct").
 *
 * --only keeps the shapes whose name contains one of its comma-separated parts ("fwd 16→16,dw"),
 * --tiles only those tiles, "direct" among them (auto and the baseline always run).
 *
 *   deno run -A bench/gpu_gemm_variants.ts [--sizes 1024,4096] [--batch 64] [--budget-s 60] [--only ...] [--tiles ...]
 */
import * as rg from "../src/mod.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import type { GpuBuffer, GpuContext } from "../gpu/device.ts";
import {
  CONV_BACKWARD_INPUT, CONV_BACKWARD_WEIGHT, CONV_FORWARD, type ConvConstants, dispatchGemm, GEMM, type GemmExtents, type GemmShape,
  planGemm, type TileName, TILES,
} from "../gpu/kernels/gemm.ts";
import { uniform } from "../src/random.ts";
import { dispatchBaseline } from "./gemm_baseline.ts";
import { directConvApplies, dispatchDirectConv } from "./gpu_direct_conv.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizes = arg("sizes", "1024,4096").split(",").filter(Boolean).map(Number);
const batch = Number(arg("batch", "64"));
const budgetMs = Number(arg("budget-s", "60")) * 1000;
/** Only the shapes whose name contains one of these (comma-separated), and only these tiles. */
const only = arg("only", "").split(",").filter(Boolean);
const tileList = arg("tiles", "").split(",").filter(Boolean);
/** A timed batch of calls lasts at least this long, so the submit-and-wait round trip is amortised. */
const MIN_BATCH_MS = 15;
const MAX_CALLS_PER_BATCH = 200;

const gpu = await createWebGPUBackend({ allowFallback: true });
if (!gpu) throw new rg.ValueError("gpu_gemm_variants: no WebGPU adapter in this runtime");
const ctx: GpuContext = gpu.context;
const started = performance.now();

interface Case {
  name: string;
  shape: GemmShape;
  extents: GemmExtents;
  /** Input lengths, in binding order before the output. */
  inputs: [number, number];
  output: number;
  params: Record<string, number>;
  /** The shape's pipeline constants: a convolution's are its geometry (ConvConstants). */
  constants?: Record<string, number | boolean>;
}

const cases: Case[] = sizes.map((n) => ({
  name: `sgemm ${n}³`, shape: GEMM, extents: { M: n, N: n, K: n, groups: 1 }, inputs: [n * n, n * n], output: n * n,
  params: { alpha: 1, beta: 0 }, constants: { TRANS_A: false, TRANS_B: false },
}));
/** ResNet-20's distinct convolutions on 32×32 inputs: [in channels, out channels, input size, stride, kernel]. */
const RESNET20_CONVS: [number, number, number, number, number][] = [
  [3, 16, 32, 1, 3], [16, 16, 32, 1, 3], [16, 32, 32, 2, 3], [16, 32, 32, 2, 1], [32, 32, 16, 1, 3],
  [32, 64, 16, 2, 3], [32, 64, 16, 2, 1], [64, 64, 8, 1, 3],
];
for (const [C, O, H, s, k] of RESNET20_CONVS) {
  const p = (k - 1) / 2, OH = Math.floor((H + 2 * p - k) / s) + 1;
  const constants = { C, H, W: H, O, KH: k, KW: k, SH: s, SW: s, PH: p, PW: p, DH: 1, DW: 1, OH, OW: OH, Cg: C, Og: O };
  const x = batch * C * H * H, w = O * C * k * k, y = batch * O * OH * OH;
  const tag = `${C}→${O} ${k}×${k}/${s} ${H}²`;
  cases.push({ name: `fwd ${tag}`, shape: CONV_FORWARD, extents: { M: O, N: batch * OH * OH, K: C * k * k, groups: 1 }, inputs: [x, w], output: y, params: {}, constants });
  if (C !== 3) {
    cases.push({ name: `dx ${tag}`, shape: CONV_BACKWARD_INPUT, extents: { M: C, N: batch * H * H, K: O * k * k, groups: 1 }, inputs: [y, w], output: x, params: {}, constants });
  }
  cases.push({ name: `dw ${tag}`, shape: CONV_BACKWARD_WEIGHT, extents: { M: O, N: C * k * k, K: batch * OH * OH, groups: 1 }, inputs: [y, x], output: w, params: {}, constants });
}

interface Variant {
  name: string;
  plan: string;
  run: (buffers: GpuBuffer[]) => void;
}

function variants(c: Case): Variant[] {
  const all: Variant[] = [{
    name: "baseline", plan: "first template",
    run: (b) => dispatchBaseline(ctx, c.shape, c.extents, b, c.params, c.constants),
  }];
  const auto = planGemm(c.extents, c.shape.splittable, undefined, ctx.busyWorkgroups);
  all.push({ name: "auto", plan: `${auto.tile}/${auto.splits}`, run: (b) => dispatchGemm(ctx, c.shape, c.extents, b, c.params, c.constants) });
  for (const tile of Object.keys(TILES) as TileName[]) {
    if (tileList.length && !tileList.includes(tile)) continue;
    all.push({
      name: tile, plan: `${tile}/1`,
      run: (b) => dispatchGemm(ctx, c.shape, c.extents, b, c.params, c.constants, { tile, splits: 1 }),
    });
    const split = planGemm(c.extents, c.shape.splittable, tile, ctx.busyWorkgroups);
    if (split.splits > 1) {
      all.push({
        name: `${tile}+split`, plan: `${tile}/${split.splits}`,
        run: (b) => dispatchGemm(ctx, c.shape, c.extents, b, c.params, c.constants, split),
      });
    }
  }
  const conv = c.constants as ConvConstants;
  if (c.shape === CONV_FORWARD && directConvApplies(conv) && (!tileList.length || tileList.includes("direct"))) {
    all.push({ name: "direct", plan: "direct 4x4", run: (b) => dispatchDirectConv(ctx, conv, batch, b) });
  }
  return all;
}

function randomBuffer(n: number, key: number): GpuBuffer {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 2 * uniform(key, i) - 1;
  const b = ctx.alloc(n);
  ctx.write(b, v);
  return b;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Milliseconds per call: one call to compile and warm up, one to size the batches, three batches. */
async function time(call: () => void): Promise<number> {
  call();
  await ctx.synchronize();
  let t0 = performance.now();
  call();
  await ctx.synchronize();
  const calls = Math.min(MAX_CALLS_PER_BATCH, Math.max(1, Math.ceil(MIN_BATCH_MS / (performance.now() - t0))));
  const perCall: number[] = [];
  for (let r = 0; r < 3; r++) {
    t0 = performance.now();
    for (let i = 0; i < calls; i++) call();
    await ctx.synchronize();
    perCall.push((performance.now() - t0) / calls);
  }
  return median(perCall);
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function relativeError(v: Float32Array, ref: Float32Array, scale: number): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i] - ref[i]));
  return scale > 0 ? m / scale : m;
}

const results = [];
const skipped: string[] = [];
const columns = ["baseline", "auto", ...Object.keys(TILES), "best split", "direct"];
console.error(`gemm variants on ${gpu.adapterDescription}: GFLOP/s (batch ${batch}); auto's plan is tile/splits`);
console.error(`${"shape".padEnd(26)} ${"M×N×K".padEnd(17)} ${columns.map((c) => c.padStart(10)).join(" ")}  auto plan   max rel err`);
for (const c of cases) {
  if (only.length && !only.some((o) => c.name.includes(o))) continue;
  if (performance.now() - started > budgetMs) {
    skipped.push(c.name);
    continue;
  }
  const { M, N, K, groups } = c.extents;
  const flops = 2 * M * N * K * groups;
  const inputs = c.inputs.map((n, i) => randomBuffer(n, 100 + i));
  const out = ctx.alloc(c.output);
  const buffers = [...inputs, out];
  const rows: { variant: string; plan: string; ms: number; gflops: number; maxRelErr: number }[] = [];
  let reference: Float32Array | null = null, scale = 0;
  for (const v of variants(c)) {
    const ms = await time(() => v.run(buffers));
    const result = await ctx.read(out);
    if (!reference) {
      reference = result;
      scale = maxAbs(result);
    }
    rows.push({ variant: v.name, plan: v.plan, ms, gflops: flops / (ms / 1000) / 1e9, maxRelErr: relativeError(result, reference, scale) });
  }
  for (const b of buffers) ctx.free(b);
  ctx.trim();
  const best = rows.reduce((a, b) => b.gflops > a.gflops ? b : a);
  results.push({ name: c.name, kernel: c.shape.key, M, N, K, groups, flops, best: best.variant, variants: rows });
  const cell = (name: string) => {
    const r = name === "best split"
      ? rows.filter((x) => x.variant.endsWith("+split")).reduce<typeof rows[0] | null>((a, b) => !a || b.gflops > a.gflops ? b : a, null)
      : rows.find((x) => x.variant === name);
    return (r ? r.gflops.toFixed(1) : "-").padStart(10);
  };
  const worstErr = Math.max(...rows.map((r) => r.maxRelErr));
  console.error(`${c.name.padEnd(26)} ${`${M}×${N}×${K}`.padEnd(17)} ${columns.map(cell).join(" ")}  ` +
    `${rows[1].plan.padEnd(10)} ${worstErr.toExponential(1)}  best ${best.variant}`);
}
if (skipped.length) console.error(`over the ${budgetMs / 1000} s budget, not measured: ${skipped.join(", ")}`);

console.log(JSON.stringify({
  adapter: gpu.adapterDescription, batch,
  timing: `host time around submit-and-wait, batches of >= ${MIN_BATCH_MS} ms (median of 3), after one warm-up call`,
  error: "max |variant - baseline| / max |baseline| over the output",
  shapes: results, skipped,
}, null, 2));
