/// <reference types="@webgpu/types" />
/**
 * One convolution at a time, ours against jax-js on the same WebGPU adapter (Deno), for the
 * three 3×3 stride-1 layer shapes of ResNet-20 at a batch: `--calls` calls recorded, then one
 * wait for all of them (ours: synchronize; jax-js: blockUntilReady on the list, since its
 * arrays are lazy and a result dropped unread is never computed), the two sides alternating
 * round by round, medians over `--rounds` after one untimed round. Two workloads per shape:
 * the convolution alone, and convolution → BatchNorm in evaluation mode → ReLU (ours: conv2d
 * then batchNormRelu; jax-js: the same under one `jit`, which its compiler fuses into the
 * convolution's epilogue). Milliseconds per call on stderr, JSON on stdout.
 *
 *   deno run -A bench/jaxjs_conv.ts [--batch 64] [--calls 8] [--rounds 5]
 */
import * as rg from "../src/mod.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import type { Array as JaxArray } from "@jax-js/jax";
import { log, median, option } from "./bench_args.ts";

const batch = Number(option("batch", "64"));
const calls = Number(option("calls", "8"));
const rounds = Number(option("rounds", "5"));
const SHAPES = [[16, 32], [32, 16], [64, 8]] as const;

const gpu = await createWebGPUBackend({ allowFallback: true });
if (!gpu) throw new rg.ValueError("jaxjs_conv: no WebGPU adapter in this runtime");
rg.registerBackend(gpu);
rg.setBackend("webgpu");
const jax = await import("@jax-js/jax");
if (!(await jax.init("webgpu")).includes("webgpu")) throw new rg.ValueError("jaxjs_conv: jax-js found no WebGPU device");
jax.defaultDevice("webgpu");
const { blockUntilReady, jit, lax, nn, numpy: np } = jax;

const same = (x: JaxArray, w: JaxArray) => lax.convGeneralDilated(x, w, [1, 1], [[1, 1], [1, 1]]);
const jaxConv = jit((x: JaxArray, w: JaxArray) => same(x, w));
const jaxFused = jit((x: JaxArray, w: JaxArray, scale: JaxArray, shift: JaxArray) =>
  nn.relu(same(x, w).mul(scale).add(shift)));

/** Milliseconds per call of `run`, `calls` calls then one wait. */
async function perCall(run: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await run();
  return (performance.now() - t0) / calls;
}

const rows = [];
for (const [C, H] of SHAPES) {
  rg.manualSeed(1);
  const x = rg.randn([batch, C, H, H]), w = rg.scale(rg.randn([C, C, 3, 3]), 0.1);
  const gamma = rg.randn([C]), beta = rg.randn([C]), mean = rg.randn([C]), variance = rg.full([C], 2);
  const jx = np.array(await x.data(), { shape: [...x.shape] }), jw = np.array(await w.data(), { shape: [...w.shape] });
  // The running statistics' affine map as jax-js's user writes it: scale = γ/√(var + eps), shift = β − mean·scale.
  const g = await gamma.data(), b = await beta.data(), m = await mean.data(), v = await variance.data();
  const scaleValues = g.map((gc, c) => gc / Math.sqrt(v[c] + 1e-5));
  const jscale = np.array(scaleValues, { shape: [1, C, 1, 1] });
  const jshift = np.array(b.map((bc, c) => bc - m[c] * scaleValues[c]), { shape: [1, C, 1, 1] });

  const ours = {
    conv: async () => {
      const ys = Array.from({ length: calls }, () => rg.conv2d(x, w, null, { padding: 1 }));
      await gpu.synchronize();
      ys.forEach((y) => y.dispose());
    },
    fused: async () => {
      const ys = rg.noGrad(() => Array.from({ length: calls }, () => {
        const y = rg.conv2d(x, w, null, { padding: 1 });
        const out = rg.batchNormRelu(y, gamma, beta, mean, variance, { training: false });
        y.dispose();
        return out;
      }));
      await gpu.synchronize();
      ys.forEach((y) => y.dispose());
    },
  };
  const theirs = {
    conv: async () => {
      const ys = Array.from({ length: calls }, () => jaxConv(jx.ref, jw.ref));
      await blockUntilReady(ys);
      ys.forEach((y) => y.dispose());
    },
    fused: async () => {
      const ys = Array.from({ length: calls }, () => jaxFused(jx.ref, jw.ref, jscale.ref, jshift.ref));
      await blockUntilReady(ys);
      ys.forEach((y) => y.dispose());
    },
  };
  for (const workload of ["conv", "fused"] as const) {
    const ms = { ours: [] as number[], jaxjs: [] as number[] };
    for (let r = 0; r <= rounds; r++) {
      const order = r % 2 === 0 ? ["ours", "jaxjs"] as const : ["jaxjs", "ours"] as const;
      for (const side of order) {
        const t = await perCall(side === "ours" ? ours[workload] : theirs[workload]);
        if (r > 0) ms[side].push(t);
      }
    }
    const row = { C, H, batch, workload, msPerCall: { ours: median(ms.ours), jaxjs: median(ms.jaxjs) }, ms };
    log(`${C}→${C} ${H}×${H} batch ${batch} ${workload === "conv" ? "conv" : "conv+bn+relu"}: ` +
      `ours ${row.msPerCall.ours.toFixed(1)} ms, jax-js ${row.msPerCall.jaxjs.toFixed(1)} ms per call ` +
      `(ours ×${(row.msPerCall.jaxjs / row.msPerCall.ours).toFixed(2)} as fast)`);
    rows.push(row);
  }
  [x, w, gamma, beta, mean, variance].forEach((t) => t.dispose());
  [jx, jw, jscale, jshift].forEach((a) => a.dispose());
}
console.log(JSON.stringify({ bench: "jaxjs-conv", adapter: gpu.adapterDescription, calls, rounds, rows }, null, 1));
