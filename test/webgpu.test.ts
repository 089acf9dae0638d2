/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend against the CPU backend: every kernel on the same random inputs (mostly
 * through the ops, forward and backward via autograd), then ResNet-20 forward, backward with
 * PowerGrad α = 0.25 and three SGD steps, a 20-step leak check, the one-dispatch optimiser
 * step, and the device errors (loss mid-training, out of memory, validation).
 * Where no adapter exists (Node, or Deno without a GPU driver) every test is registered as
 * skipped and the reason printed. On a software adapter (lavapipe) shapes are kept small.
 *
 * Tolerances (|gpu − cpu| ≤ atol + rtol·|cpu|): elementwise rtol 1e-5 / atol 1e-6 (WGSL
 * division and transcendentals are not correctly rounded); reductions and GEMM-shaped
 * kernels rtol 1e-4 / atol 1e-5·(scale), where scale grows as √K for K ≥ 256; whole-model
 * values rtol 1e-3 with an absolute floor of 1e-3 × the tensor's RMS (float32 through 20
 * layers, summed in a different order).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import {
  both, compare, cpu, ELEMENTWISE, forwardAndBackward, gemmTol, gpuTest, mirrorOnGpu, modelTol, randomValues, REDUCTION,
} from "./support/gpu.ts";
import { DeviceLostError, OutOfMemoryError, WebGPUError } from "../src/errors.ts";
import type { SgdOptions } from "../src/backend/backend.ts";
import { fusedSgd, planSgd } from "../gpu/sgd.ts";
import { CPU_ADAPTER_WORKGROUPS, LARGE_GPU_WORKGROUPS, MAX_DISPATCHES_PER_SUBMIT } from "../gpu/device.ts";
import { CHANNEL_WORKGROUP, channelBlocks } from "../gpu/kernels/norm.ts";
import { DispatchProfiler } from "../gpu/profiler.ts";
import { CONV_BACKWARD_WEIGHT, dispatchGemm, GEMM, planGemm, type TileName, TILES } from "../gpu/kernels/gemm.ts";
import { assertClose, loadFixture } from "./helpers.ts";

// ---- plumbing ----

test("webgpu: createWebGPUBackend returns null where there is no acceptable adapter (runs everywhere)", async () => {
  const api = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  const adapter = api ? await api.requestAdapter() : null;
  const isFallback = (adapter?.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  const strict = await createWebGPUBackend();
  if (!adapter || isFallback) assert.is(strict, null, "no adapter, or only a fallback one without allowFallback");
  else {
    assert.ok(strict, "a hardware adapter gives a backend");
    strict!.destroy();
  }
});

gpuTest("webgpu: fill, copy, axpy, scale, write/read of float and int32 data", async (g) => {
  const n = 1000;
  const x = randomValues(n, 1);
  const a = g.alloc(n), b = g.alloc(n);
  g.write(a, x);
  g.fill(b, 0.5);
  g.axpy(-2, a, b);
  const expectedAxpy = x.map((v) => Math.fround(0.5 + Math.fround(-2 * v)));
  assertClose(await g.read(b), expectedAxpy, "axpy", ELEMENTWISE);
  g.scale(a, b, 3);
  assertClose(await g.read(b), x.map((v) => Math.fround(3 * v)), "scale", ELEMENTWISE);
  g.scale(b, b, 0.5); // in place: the output aliases the input
  assertClose(await g.read(b), x.map((v) => Math.fround(1.5 * v)), "scale in place", ELEMENTWISE);
  g.copy(a, b);
  assert.equal([...(await g.read(b))], [...x], "copy is exact");
  const ints = Int32Array.from({ length: n }, (_, i) => i - 7);
  g.write(a, ints);
  assert.equal([...new Int32Array((await g.read(a)).buffer)], [...ints], "int32 round trip");
  g.free(a);
  g.free(b);
});

gpuTest("webgpu: a write after recorded-but-unsubmitted work does not reach back into that work", async (g) => {
  const a = g.alloc(64), b = g.alloc(64);
  g.write(a, new Float32Array(64).fill(2));
  g.scale(a, b, 3); // recorded, not submitted
  const submits = g.stats().submits;
  g.write(a, new Float32Array(64).fill(5));
  assert.is(g.stats().submits, submits, "the write needs no early submit");
  assert.equal([...(await g.read(b))], new Array(64).fill(6), "the scale saw the old contents");
  assert.equal([...(await g.read(a))], new Array(64).fill(5), "later reads see the new contents");
  g.free(a);
  g.free(b);
});

gpuTest("webgpu: memory() counts live bytes and peak; sizes above the binding limit are a clear error", (g) => {
  const before = g.memory();
  const a = g.alloc(10_000);
  const during = g.memory();
  assert.ok(during.bytesInUse >= before.bytesInUse + 40_000, "bytes grow by at least the request");
  assert.is(during.buffers, before.buffers + 1);
  g.free(a);
  assert.is(g.memory().bytesInUse, before.bytesInUse, "freeing returns the bytes");
  assert.ok(g.memory().peakBytes >= during.bytesInUse, "peak remembers");
  const limit = g.context.limits.maxStorageBufferBindingSize;
  try {
    g.alloc(limit / 4 + 1);
    assert.unreachable("an oversized tensor must throw");
  } catch (e) {
    assert.instance(e, rg.RetrogradError);
    assert.match((e as Error).message, String(limit));
  }
});

gpuTest("webgpu: random uniform is bit-identical to the CPU; normals agree to float tolerance", async (g) => {
  const c = cpu();
  for (const [lo, hi, key, counter, n] of [[0, 1, 7, 0, 1001], [-0.3, 0.3, 123, 4_000_000_000, 777], [-2, 5, 9, 17, 64]]) {
    const a = c.alloc(n), b = g.alloc(n);
    c.random(a, { kind: "uniform", low: lo, high: hi }, { key, counter });
    g.random(b, { kind: "uniform", low: lo, high: hi }, { key, counter });
    const expected = c.readSync!(a), actual = await g.read(b);
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (actual[i] !== expected[i]) mismatches++;
    assert.is(mismatches, 0, `uniform(${lo}, ${hi}): ${mismatches} of ${n} values differ`);
    c.random(a, { kind: "normal", mean: lo, std: hi - lo }, { key, counter });
    g.random(b, { kind: "normal", mean: lo, std: hi - lo }, { key, counter });
    assertClose(await g.read(b), c.readSync!(a), `normal(${lo}, ${hi - lo})`, { rtol: 1e-5, atol: 2e-6 * (hi - lo) * 6 });
    c.free(a);
    g.free(b);
  }
});

gpuTest("webgpu: the dispatch profiler records each dispatch with its kernel and a GPU time, by timestamps and by replay", async () => {
  const b = await createWebGPUBackend({ allowFallback: true, optionalFeatures: ["timestamp-query"] });
  const stamps = b!.device.features.has("timestamp-query");
  for (const forceReplay of [false, true]) {
    const profiler = new DispatchProfiler(b!.context, { forceReplay });
    const x = b!.alloc(5000), y = b!.alloc(5000);
    b!.fill(x, 2);
    b!.scale(x, y, 3);
    const scaled = await b!.read(y); // a submit in the middle: the profile spans two
    b!.fill(y, 1);
    const profile = await profiler.stop();
    assert.equal(profile.method, stamps && !forceReplay ? "timestamp-query" : "replay");
    assert.equal(profile.dispatches.map((d) => d.key), ["fill", "scale", "fill"]);
    assert.equal(profile.dispatches.map((d) => d.params.n), [5000, 5000, 5000]);
    for (const d of profile.dispatches) assert.ok(Number.isFinite(d.ns) && d.ns >= 0, `${d.key}: ${d.ns} ns`);
    if (profile.spanNs !== undefined) {
      assert.ok(profile.spanNs >= Math.max(...profile.dispatches.map((d) => d.ns)), "span covers each dispatch");
    }
    // Profiling changes no result, and the context dispatches normally afterwards.
    assert.equal(scaled[4999], 6);
    assert.equal((await b!.read(y))[0], 1);
    assert.equal(b!.context.observer, null);
    b!.free(x);
    b!.free(y);
  }
  b!.destroy();
});

// ---- GEMM and convolution ----

gpuTest("webgpu: gemm, every transA/transB combination, alpha and beta (K up to 300)", async (g) => {
  const c = cpu();
  for (const [M, N, K] of [[5, 7, 3], [37, 70, 300], [70, 33, 17]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [alpha, beta] of [[1, 0], [0.5, -1.5]]) {
          const a = randomValues(M * K, 11), b = randomValues(K * N, 12), c0 = randomValues(M * N, 13);
          const bufs = [a, b, c0].map((v) => {
            const x = c.alloc(v.length), y = g.alloc(v.length);
            c.write(x, v);
            g.write(y, v);
            return [x, y];
          });
          c.gemm({ transA, transB, M, N, K, alpha, a: bufs[0][0], b: bufs[1][0], beta, c: bufs[2][0] });
          g.gemm({ transA, transB, M, N, K, alpha, a: bufs[0][1], b: bufs[1][1], beta, c: bufs[2][1] });
          assertClose(await g.read(bufs[2][1]), c.readSync!(bufs[2][0]),
            `gemm ${M}×${N}×${K} tA=${transA} tB=${transB} α=${alpha} β=${beta}`, gemmTol(K));
          for (const [x, y] of bufs) {
            c.free(x);
            g.free(y);
          }
        }
      }
    }
  }
});

gpuTest("webgpu: gemm on every tile, with edges in M, N and K, and transposed operands", async (g) => {
  // The default plan picks one tile per shape; this runs each on a shape that is not a
  // multiple of any tile (nor of the 16-deep K slice), against the CPU's GEMM.
  const c = cpu();
  const [M, N, K] = [133, 263, 37];
  for (const tile of Object.keys(TILES) as TileName[]) {
    for (const [transA, transB] of [[false, false], [true, true]]) {
      const a = randomValues(M * K, 14), b = randomValues(K * N, 15);
      const [ac, bc, yc] = [a.length, b.length, M * N].map((n) => c.alloc(n));
      const [ag, bg, yg] = [a.length, b.length, M * N].map((n) => g.context.alloc(n));
      c.write(ac, a);
      c.write(bc, b);
      g.context.write(ag, a);
      g.context.write(bg, b);
      c.gemm({ transA, transB, M, N, K, alpha: 1, a: ac, b: bc, beta: 0, c: yc });
      dispatchGemm(g.context, GEMM, { M, N, K, groups: 1 }, [ag, bg, yg], { alpha: 1, beta: 0 },
        { TRANS_A: transA, TRANS_B: transB }, { tile, splits: 1 });
      assertClose(await g.context.read(yg), c.readSync!(yc), `gemm tile ${tile} tA=${transA} tB=${transB}`, gemmTol(K));
      for (const x of [ac, bc, yc]) c.free(x);
      for (const x of [ag, bg, yg]) g.context.free(x);
    }
  }
});

/** A GEMM's plan as "tile/splits". */
const planOf = (M: number, N: number, K: number, splittable: boolean, busy?: number) => {
  const p = planGemm({ M, N, K, groups: 1 }, splittable, undefined, busy);
  return `${p.tile}/${p.splits}`;
};

test("webgpu: the GEMM plan on a large GPU keeps its tiles but for a short N; a CPU adapter's takes larger tiles and fewer K slices (runs everywhere)", () => {
  // sgemm, and ResNet-20 at batch 64: the 64-channel forward (M 64, N 64·8·8, K 64·9) and
  // the 16- and 64-channel weight gradients (K = 64·32·32 and 64·8·8). The 16-channel one's
  // N = 144 takes the 32-wide tile on either (a 256-wide one computed 44 % padding).
  const shapes: [number, number, number, boolean][] = [
    [512, 512, 512, false], [4096, 4096, 4096, false], [64, 4096, 576, false], [16, 144, 65536, true], [64, 576, 4096, true],
  ];
  const large = ["64x64/1", "128x128/1", "64x64/1", "16x32/52", "64x64/16"];
  assert.equal(shapes.map(([M, N, K, split]) => planOf(M, N, K, split)), large, "the default target is a large GPU's");
  assert.equal(shapes.map(([M, N, K, split]) => planOf(M, N, K, split, LARGE_GPU_WORKGROUPS)), large);
  assert.equal(shapes.map(([M, N, K, split]) => planOf(M, N, K, split, CPU_ADAPTER_WORKGROUPS)),
    ["128x128/1", "128x128/1", "64x256/1", "16x32/4", "64x64/2"]);
});

gpuTest("webgpu: a GEMM is planned for this adapter (CPU adapters: 16 busy workgroups, GPUs 256); the tile changes, the bits do not", async (g) => {
  const adapter = await (globalThis as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter();
  const isFallback = (adapter?.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? false;
  assert.is(g.context.busyWorkgroups, isFallback ? CPU_ADAPTER_WORKGROUPS : LARGE_GPU_WORKGROUPS);
  const [M, N, K] = [512, 512, 20];
  const a = g.alloc(M * K), b = g.alloc(K * N), y = g.alloc(M * N);
  g.write(a, randomValues(M * K, 16));
  g.write(b, randomValues(K * N, 17));
  const saved = g.context.busyWorkgroups;
  const run = async (busy: number) => {
    const kernels: string[] = [];
    g.context.busyWorkgroups = busy;
    g.context.observer = { passFor: (spec) => (kernels.push(spec.key), {}), beforeSubmit: () => {} };
    try {
      g.gemm({ transA: false, transB: false, M, N, K, alpha: 1, a, b, beta: 0, c: y });
      return { kernels, values: await g.read(y) };
    } finally {
      g.context.observer = null;
      g.context.busyWorkgroups = saved;
    }
  };
  const large = await run(LARGE_GPU_WORKGROUPS), small = await run(CPU_ADAPTER_WORKGROUPS);
  assert.equal(large.kernels, ["gemm_64x64"]);
  assert.equal(small.kernels, ["gemm_128x128"]);
  assert.equal([...small.values], [...large.values], "the same sums in the same order");
  for (const x of [a, b, y]) g.free(x);
});

gpuTest("webgpu: matmul and linear forward and backward", async (g) => {
  const [xc, xg] = both(randomValues(6 * 20, 21), [6, 20], g, true);
  const [wc, wg] = both(randomValues(9 * 20, 22), [9, 20], g, true);
  const [bc, bg] = both(randomValues(9, 23), [9], g, true);
  const [dyc, dyg] = both(randomValues(6 * 9, 24), [6, 9], g);
  const yc = rg.linear(xc, wc, bc), yg = rg.linear(xg, wg, bg);
  await compare(yg, yc, "linear", gemmTol(20));
  yc.backward(dyc);
  yg.backward(dyg);
  await compare(xg.grad!, xc.grad!, "linear dx", gemmTol(9));
  await compare(wg.grad!, wc.grad!, "linear dw", gemmTol(6));
  await compare(bg.grad!, bc.grad!, "linear db", REDUCTION);
});

const CONV_CASES: { name: string; x: number[]; w: number[]; opts: rg.Conv2dOptions }[] = [
  { name: "3×3 pad 1", x: [2, 3, 9, 9], w: [8, 3, 3, 3], opts: { padding: 1 } },
  { name: "3×3 stride 2 pad 1", x: [2, 4, 9, 8], w: [6, 4, 3, 3], opts: { stride: 2, padding: 1 } },
  { name: "groups 2, dilation 2, stride (2,1), pad (2,1)", x: [2, 4, 10, 9], w: [6, 2, 3, 2], opts: { groups: 2, dilation: 2, stride: [2, 1], padding: [2, 1] } },
  { name: "depthwise", x: [1, 5, 7, 7], w: [5, 1, 3, 3], opts: { groups: 5, padding: 1 } },
  { name: "1×1 stride 2 (projection shortcut)", x: [2, 8, 8, 8], w: [16, 8, 1, 1], opts: { stride: 2 } },
  { name: "K = 288 (32 channels, 3×3)", x: [2, 32, 6, 6], w: [40, 32, 3, 3], opts: { padding: 1 } },
  // Weight-gradient K = 3·20·20 = 1200: split into 4 slices (304, 304, 304, 288 long) per group.
  { name: "weight gradient split over K, groups 2", x: [3, 4, 20, 20], w: [6, 2, 3, 3], opts: { groups: 2, padding: 1 } },
];

test("webgpu: the weight gradient of the split case is planned in K slices, a short one is not (runs everywhere)", () => {
  assert.equal(planGemm({ M: 3, N: 18, K: 1200, groups: 2 }, CONV_BACKWARD_WEIGHT.splittable).splits, 4);
  assert.equal(planGemm({ M: 8, N: 27, K: 162, groups: 1 }, CONV_BACKWARD_WEIGHT.splittable).splits, 1);
  assert.equal(planGemm({ M: 3, N: 18, K: 1200, groups: 2 }, GEMM.splittable).splits, 1);
});

for (const cc of CONV_CASES) {
  gpuTest(`webgpu: conv2d ${cc.name}: forward, input and weight gradients, bias`, async (g) => {
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const [xc, xg] = both(randomValues(size(cc.x), 31), cc.x, g, true);
    const [wc, wg] = both(randomValues(size(cc.w), 32), cc.w, g, true);
    const [bc, bg] = both(randomValues(cc.w[0], 33), [cc.w[0]], g, true);
    const yc = rg.conv2d(xc, wc, bc, cc.opts), yg = rg.conv2d(xg, wg, bg, cc.opts);
    const K = size(cc.w.slice(1));
    await compare(yg, yc, "conv forward", gemmTol(K));
    const [dyc, dyg] = both(randomValues(yc.size, 34), yc.shape, g);
    yc.backward(dyc);
    yg.backward(dyg);
    await compare(xg.grad!, xc.grad!, "conv dx", gemmTol(cc.w[0] * cc.w[2] * cc.w[3]));
    await compare(wg.grad!, wc.grad!, "conv dw", gemmTol(yc.size / cc.w[0]));
    await compare(bg.grad!, bc.grad!, "conv db", gemmTol(yc.size / cc.w[0]));
  });
}

// ---- normalisation, activations, broadcasting ----

test("webgpu: a channel's N·HW values are cut into 1 to 256 blocks of at least 1024 that cover them once (runs everywhere)", () => {
  for (const count of [0, 1, 1024, 1025, 2645, 262144, 262145, 300000, 1e7]) {
    const { blocks, blockLen } = channelBlocks(count);
    assert.ok(blocks >= 1 && blocks <= CHANNEL_WORKGROUP && blockLen >= 1024, `${count}: ${blocks} × ${blockLen}`);
    assert.ok(blocks * blockLen >= count && (blocks - 1) * blockLen < Math.max(count, 1), `${count}: ${blocks} × ${blockLen}`);
  }
  assert.equal(channelBlocks(2645), { blocks: 3, blockLen: 1024 });
  assert.equal(channelBlocks(300000), { blocks: 256, blockLen: 1172 });
});

// [3, 5, 6, 7]: one block per channel; [5, 3, 23, 23]: 3 blocks, the last short; [3, 2, 250, 400]: 256 blocks of 1172.
const BATCH_NORM_SHAPES = [[3, 5, 6, 7], [5, 3, 23, 23], [3, 2, 250, 400]];

gpuTest("webgpu: batchNorm training (running stats) and evaluation, forward and backward, over 1 to 256 blocks per channel", async (g) => {
  for (const shape of BATCH_NORM_SHAPES) {
    const C = shape[1], n = shape.reduce((p, d) => p * d, 1);
    const x = randomValues(n, 41, -2, 3);
    for (const training of [true, false]) {
      const [xc, xg] = both(x, shape, g, true);
      const [gc, gg] = both(randomValues(C, 42, 0.5, 1.5), [C], g, true);
      const [bc, bg] = both(randomValues(C, 43), [C], g, true);
      const [mc, mg] = both(randomValues(C, 44), [C], g);
      const [vc, vg] = both(randomValues(C, 45, 0.5, 2), [C], g);
      const opts = { training, momentum: 0.2, eps: 1e-4 };
      const yc = rg.batchNorm(xc, gc, bc, mc, vc, opts), yg = rg.batchNorm(xg, gg, bg, mg, vg, opts);
      const mode = `${training ? "train" : "eval"} ${shape.join("×")}`;
      await compare(yg, yc, `batchNorm ${mode} y`, REDUCTION);
      await compare(mg, mc, `batchNorm ${mode} running_mean`, REDUCTION);
      await compare(vg, vc, `batchNorm ${mode} running_var`, REDUCTION);
      const [dyc, dyg] = both(randomValues(n, 46), shape, g);
      yc.backward(dyc);
      yg.backward(dyg);
      await compare(xg.grad!, xc.grad!, `batchNorm ${mode} dx`, { rtol: 1e-4, atol: 1e-4 });
      await compare(gg.grad!, gc.grad!, `batchNorm ${mode} dgamma`, { rtol: 1e-4, atol: 1e-4 });
      await compare(bg.grad!, bc.grad!, `batchNorm ${mode} dbeta`, { rtol: 1e-4, atol: 1e-4 });
    }
  }
});

gpuTest("webgpu: batchNormRelu (training and evaluation; with and without a residual) forward, running stats and every gradient", async (g) => {
  for (const shape of BATCH_NORM_SHAPES.slice(0, 2)) {
    const C = shape[1], n = shape.reduce((p, d) => p * d, 1);
    for (const [withResidual, training] of [[false, true], [true, true], [false, false], [true, false]]) {
      const [xc, xg] = both(randomValues(n, 47, -2, 3), shape, g, true);
      const [gc, gg] = both(randomValues(C, 48, 0.5, 1.5), [C], g, true);
      const [bc, bg] = both(randomValues(C, 49), [C], g, true);
      const [mc, mg] = both(randomValues(C, 50), [C], g);
      const [vc, vg] = both(randomValues(C, 53, 0.5, 2), [C], g);
      const [rc, rgpu] = withResidual ? both(randomValues(n, 54), shape, g, true) : [null, null];
      const opts = { training, momentum: 0.2, eps: 1e-4 };
      const yc = rg.batchNormRelu(xc, gc, bc, mc, vc, opts, rc), yg = rg.batchNormRelu(xg, gg, bg, mg, vg, opts, rgpu);
      const label = `batchNormRelu${withResidual ? " + residual" : ""} ${training ? "training" : "evaluation"} ${shape.join("×")}`;
      await compare(yg, yc, `${label} y`, REDUCTION);
      await compare(mg, mc, `${label} running_mean`, REDUCTION);
      await compare(vg, vc, `${label} running_var`, REDUCTION);
      const [dyc, dyg] = both(randomValues(n, 55), shape, g);
      yc.backward(dyc);
      yg.backward(dyg);
      const tol = { rtol: 1e-4, atol: 1e-4 };
      await compare(xg.grad!, xc.grad!, `${label} dx`, tol);
      await compare(gg.grad!, gc.grad!, `${label} dgamma`, tol);
      await compare(bg.grad!, bc.grad!, `${label} dbeta`, tol);
      if (rc && rgpu) await compare(rgpu.grad!, rc.grad!, `${label} dresidual`, ELEMENTWISE);
    }
  }
});

gpuTest("webgpu: relu and sigmoid forward and backward", async (g) => {
  const x = randomValues(3000, 51, -30, 30);
  for (const [name, f] of [["relu", rg.relu], ["sigmoid", rg.sigmoid]] as const) {
    const [xc, xg] = both(x, [3000], g, true);
    const yc = f(xc), yg = f(xg);
    await compare(yg, yc, `${name} forward`, ELEMENTWISE);
    const [dyc, dyg] = both(randomValues(3000, 52), [3000], g);
    yc.backward(dyc);
    yg.backward(dyg);
    await compare(xg.grad!, xc.grad!, `${name} backward`, ELEMENTWISE);
  }
});

gpuTest("webgpu: broadcasting add/sub/mul/div and their gradients (reduce_broadcast)", async (g) => {
  const cases: [number[], number[]][] = [
    [[2, 3, 4, 5], [1, 3, 1, 1]], // per-channel
    [[2, 3, 4, 5], [5]], // trailing
    [[4, 1, 6], [1, 5, 1]], // both broadcast
    [[40, 70], [1]], // scalar: a 2800-term reduction
    [[3, 4], [3, 4]], // none
  ];
  const ops = [["add", rg.add], ["sub", rg.sub], ["mul", rg.mul], ["div", rg.div]] as const;
  for (const [sa, sb] of cases) {
    for (const [name, f] of ops) {
      const na = sa.reduce((p, q) => p * q, 1), nb = sb.reduce((p, q) => p * q, 1);
      const [ac, ag] = both(randomValues(na, 61), sa, g, true);
      const [bc, bg] = both(randomValues(nb, 62, 0.5, 2), sb, g, true);
      const yc = f(ac, bc), yg = f(ag, bg);
      const label = `${name} [${sa}] [${sb}]`;
      await compare(yg, yc, label, ELEMENTWISE);
      const [dyc, dyg] = both(randomValues(yc.size, 63), yc.shape, g);
      yc.backward(dyc);
      yg.backward(dyg);
      await compare(ag.grad!, ac.grad!, `${label} da`, REDUCTION);
      await compare(bg.grad!, bc.grad!, `${label} db`, { rtol: 1e-4, atol: 1e-4 });
    }
  }
});

gpuTest("webgpu: dropout draws the CPU's mask exactly", async (g) => {
  const x = randomValues(2000, 71);
  const [xc, xg] = both(x, [20, 100], g, true);
  rg.manualSeed(5);
  const yc = rg.dropout(xc, 0.3, true);
  rg.manualSeed(5);
  const yg = rg.dropout(xg, 0.3, true);
  assert.equal([...(await yg.data())], [...yc.dataSync()], "dropout outputs are bit-identical");
  const [dyc, dyg] = both(randomValues(2000, 72), [20, 100], g);
  yc.backward(dyc);
  yg.backward(dyg);
  assert.equal([...(await xg.grad!.data())], [...xc.grad!.dataSync()], "dropout gradients are bit-identical");
});

gpuTest("webgpu: max and average pooling (count_include_pad on and off), forward and backward", async (g) => {
  const shape = [2, 3, 9, 8];
  const x = randomValues(2 * 3 * 72, 81);
  const pools: [string, (t: rg.Tensor) => rg.Tensor][] = [
    ["max 3/2 pad 1", (t) => rg.maxPool2d(t, { kernel: 3, stride: 2, padding: 1 })],
    ["max 2", (t) => rg.maxPool2d(t, { kernel: 2 })],
    ["avg 3/2 pad 1 include pad", (t) => rg.avgPool2d(t, { kernel: 3, stride: 2, padding: 1, countIncludePad: true })],
    ["avg 3/2 pad 1 exclude pad", (t) => rg.avgPool2d(t, { kernel: 3, stride: 2, padding: 1, countIncludePad: false })],
    ["avg (2,3)/(1,2)", (t) => rg.avgPool2d(t, { kernel: [2, 3], stride: [1, 2] })],
    ["global avg", (t) => rg.globalAvgPool2d(t)],
  ];
  for (const [name, f] of pools) await forwardAndBackward(g, name, x, shape, f, ELEMENTWISE, 82);
});

gpuTest("webgpu: NaN and ±Infinity through relu, batchNormRelu (with residual) and max pooling match PyTorch", async (g) => {
  const fx = loadFixture("nonfinite.safetensors");
  const onGpu = (name: string) => rg.tensor(fx.get(name).dataSync(), fx.get(name).shape, g).requireGrad();
  const check = async (t: rg.Tensor, name: string) => assertClose(await t.data(), fx.get(name), `webgpu ${name}`, REDUCTION);

  const x = onGpu("relu.x");
  const y = rg.relu(x);
  await check(y, "relu.y");
  y.backward(rg.tensor(fx.get("relu.dy").dataSync(), y.shape, g));
  await check(x.grad!, "relu.dx");

  const m = fx.meta("bn_relu") as { momentum: number; eps: number };
  const [bx, w, b, residual] = ["x", "weight", "bias", "residual"].map((k) => onGpu(`bn_relu.${k}`));
  const [rm, rv] = ["running_mean", "running_var"].map((k) => rg.tensor(fx.get(`bn_relu.${k}`).dataSync(), [3], g));
  const by = rg.batchNormRelu(bx, w, b, rm, rv, { training: true, momentum: m.momentum, eps: m.eps }, residual);
  await check(by, "bn_relu.y");
  await check(rm, "bn_relu.running_mean_after");
  await check(rv, "bn_relu.running_var_after");
  by.backward(rg.tensor(fx.get("bn_relu.dy").dataSync(), by.shape, g));
  for (const [name, t] of [["x", bx], ["weight", w], ["bias", b], ["residual", residual]] as const) await check(t.grad!, `bn_relu.d${name}`);

  for (const name of ["maxpool_k3", "maxpool_k2"]) {
    const pm = fx.meta(name) as { kernel: number; stride: number; padding: number };
    const px = onGpu(`${name}.x`);
    const py = rg.maxPool2d(px, { kernel: pm.kernel, stride: pm.stride, padding: pm.padding });
    await check(py, `${name}.y`);
    py.backward(rg.tensor(fx.get(`${name}.dy`).dataSync(), py.shape, g));
    await check(px.grad!, `${name}.dx`);
  }
});

gpuTest("webgpu: softmax cross-entropy (label smoothing) and the fused PowerGrad backward", async (g) => {
  for (const [N, C, smoothing, powerGrad] of [[5, 10, 0, 1], [4, 130, 0.1, 0.25], [3, 7, 0.2, 0.5]]) {
    const labels = Int32Array.from({ length: N }, (_, i) => (i * 7 + 3) % C);
    const [zc, zg] = both(randomValues(N * C, 91, -6, 6), [N, C], g, true);
    const opts = { labelSmoothing: smoothing, powerGrad };
    const lc = rg.crossEntropy(zc, labels, opts), lg = rg.crossEntropy(zg, labels, opts);
    await compare(lg, lc, `loss N=${N} C=${C} ε=${smoothing}`, REDUCTION);
    lc.backward();
    lg.backward();
    await compare(zg.grad!, zc.grad!, `dlogits α=${powerGrad}`, { rtol: 1e-4, atol: 1e-6 });
  }
});

gpuTest("webgpu: sgd update (momentum, dampening, Nesterov, weight decay, first step)", async (g) => {
  const configs: rg.optim.SGDConfig[] = [
    { lr: 0.1 },
    { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
    { lr: 0.02, momentum: 0.8, dampening: 0.3, weightDecay: 1e-3 },
  ];
  for (const config of configs) {
    const [pc, pg] = both(randomValues(500, 101), [500], g, true);
    const optC = new rg.optim.SGD([pc], config), optG = new rg.optim.SGD([pg], config);
    for (let step = 0; step < 3; step++) {
      const grad = randomValues(500, 102 + step);
      pc.grad = rg.tensor(grad, [500], cpu());
      pg.grad = rg.tensor(grad, [500], g);
      optC.step();
      optG.step();
      optC.zeroGrad();
      optG.zeroGrad();
    }
    await compare(pg, pc, `sgd ${JSON.stringify(config)}`, ELEMENTWISE);
  }
});

gpuTest("webgpu: an SGD step over every parameter is one dispatch, first and later steps mixed; 3 steps match the CPU", async (g) => {
  const shapes = [[8, 3, 3, 3], [8], [8], [10, 72], [10], [1], [3000]];
  const configs: rg.optim.SGDConfig[] = [
    { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
    { lr: 0.02, momentum: 0.8, dampening: 0.3, weightDecay: 1e-3 },
    { lr: 0.1 },
  ];
  for (const config of configs) {
    const pairs = shapes.map((shape, k) =>
      both(randomValues(shape.reduce((a, b) => a * b, 1), 130 + k), shape, g, true));
    const optC = new rg.optim.SGD(pairs.map(([c]) => c), config);
    const optG = new rg.optim.SGD(pairs.map(([, d]) => d), config);
    for (let step = 0; step < 3; step++) {
      pairs.forEach(([c, d], k) => {
        if (step === 0 && k === 2) return; // no gradient yet: its first step is step 2, among later ones
        const grad = randomValues(c.size, 140 + 10 * step + k);
        c.grad = rg.tensor(grad, c.shape, cpu());
        d.grad = rg.tensor(grad, d.shape, g);
      });
      optC.step();
      const before = g.stats().dispatches;
      optG.step();
      assert.is(g.stats().dispatches - before, 1, `${JSON.stringify(config)} step ${step + 1}: one dispatch`);
      optC.zeroGrad();
      optG.zeroGrad();
    }
    const label = `sgd ${JSON.stringify(config)}`;
    for (const [k, [c, d]] of pairs.entries()) await compare(d, c, `${label} param ${k}`, ELEMENTWISE);
    const momentaC = optC.stateDict();
    for (const [key, m] of optG.stateDict()) await compare(m, momentaC.get(key)!, `${label} ${key}`, ELEMENTWISE);
    assert.is(optG.stateDict().size, config.momentum ? shapes.length : 0, "a momentum buffer per parameter");
    for (const [c, d] of pairs) {
      c.dispose();
      d.dispose();
    }
  }
});

test("webgpu: the fused SGD layout puts first steps first and splits at the buffer limit (runs everywhere)", () => {
  const entry = (length: number, firstStep: boolean) => ({ param: { length }, firstStep });
  const chunks = planSgd([entry(500, false), entry(300, false), entry(0, true), entry(1000, true), entry(200, false)], 1000);
  assert.equal(chunks.map((c) => c.entries.map((e) => e.param.length)), [[1000], [500, 300, 200]]);
  assert.equal(chunks.map((c) => c.offsets), [[0], [0, 500, 800]]);
  assert.equal(chunks.map((c) => [c.length, c.firstEnd]), [[1000, 1000], [1000, 0]]);
});

gpuTest("webgpu: an SGD step larger than one buffer runs one dispatch per buffer's worth, same numbers", async (g) => {
  const lengths = [500, 300, 1000, 200];
  const o: SgdOptions = { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true };
  const c = cpu();
  // Per parameter: its values, gradient and momentum.
  const values = lengths.map((n, k) => [0, 10, 20].map((stream) => randomValues(n, 150 + stream + k)));
  const onCpu = values.map((vs) => vs.map((v) => {
    const b = c.alloc(v.length);
    c.write(b, v);
    return b;
  }));
  const onGpu = values.map((vs) => vs.map((v) => {
    const b = g.context.alloc(v.length);
    g.context.write(b, v);
    return b;
  }));
  const entries = <B>(bufs: B[][]) =>
    bufs.map(([param, grad, momentum], k) => ({ param, grad, momentum, firstStep: k === 2 }));
  c.sgdStep!(entries(onCpu), o);
  const before = g.stats().dispatches;
  fusedSgd(g.context, entries(onGpu), o, 1000);
  assert.is(g.stats().dispatches - before, 2, "1000 + 1000 elements in buffers of 1000");
  for (const [k, n] of lengths.entries()) {
    assertClose(await g.read(onGpu[k][0]), c.readSync!(onCpu[k][0]), `param ${k} (${n})`, ELEMENTWISE);
    assertClose(await g.read(onGpu[k][2]), c.readSync!(onCpu[k][2]), `momentum ${k} (${n})`, ELEMENTWISE);
  }
  onCpu.flat().forEach((b) => c.free(b));
  onGpu.flat().forEach((b) => g.free(b));
});

// ---- whole models ----

function lossAndBackward(model: rg.nn.Module, x: rg.Tensor, labels: Int32Array, powerGrad: number) {
  return rg.tidy(() => {
    const logits = model.forward(x);
    const loss = rg.crossEntropy(logits, labels, { powerGrad });
    loss.backward();
    return { logits, loss };
  });
}

gpuTest("webgpu: ResNet-20 forward, PowerGrad (α = 0.25) backward and 3 SGD steps match the CPU", async (g) => {
  rg.manualSeed(1);
  const make = () => rg.models.resnet20({ numClasses: 10 });
  const cpuModel = make();
  const gpuModel = mirrorOnGpu(make, cpuModel);
  const shape = [2, 3, 16, 16];
  const [xc, xg] = both(randomValues(2 * 3 * 256, 111, -2, 2), shape, g);
  const labels = Int32Array.from([3, 8]);
  const sgd = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true };
  const optC = new rg.optim.SGD(cpuModel.parameters(), sgd), optG = new rg.optim.SGD(gpuModel.parameters(), sgd);

  for (let step = 0; step < 3; step++) {
    const before = g.stats();
    const rc = lossAndBackward(cpuModel, xc, labels, 0.25);
    const rgpu = lossAndBackward(gpuModel, xg, labels, 0.25);
    if (step === 0) {
      await compare(rgpu.logits, rc.logits, "resnet20 logits", modelTol(rc.logits.dataSync()));
      await compare(rgpu.loss, rc.loss, "resnet20 loss", { rtol: 1e-4, atol: 1e-5 });
      const gradsC = cpuModel.namedParameters(), gradsG = new Map(gpuModel.namedParameters());
      for (const [name, p] of gradsC) {
        const expected = p.grad!.dataSync();
        assertClose(await gradsG.get(name)!.grad!.data(), expected, `resnet20 grad ${name}`, modelTol(expected));
      }
    }
    optC.step();
    optG.step();
    optC.zeroGrad();
    optG.zeroGrad();
    await rgpu.loss.data();
    const after = g.stats();
    console.log(`webgpu: resnet20 step ${step + 1}: ${after.dispatches - before.dispatches} dispatches, ${after.submits - before.submits} submits`);
    for (const r of [rc, rgpu]) {
      r.logits.dispose();
      r.loss.dispose();
    }
  }
  const stateC = cpuModel.stateDict();
  for (const [name, t] of gpuModel.stateDict()) {
    const expected = stateC.get(name)!.dataSync();
    assertClose(await t.data(), expected, `resnet20 after 3 steps: ${name}`, modelTol(expected));
  }
  cpuModel.dispose();
  gpuModel.dispose();
});

gpuTest("webgpu: no leak — bytes in use return to the same value after every one of 20 training steps", async (g) => {
  rg.manualSeed(2);
  rg.setBackend("webgpu");
  let model: rg.nn.Module;
  try {
    model = new rg.nn.Sequential(
      new rg.nn.Conv2d(3, 4, 3, { padding: 1 }), new rg.nn.BatchNorm2d(4), new rg.nn.ReLU(),
      new rg.nn.MaxPool2d(2), new rg.nn.Flatten(), new rg.nn.Linear(4 * 4 * 4, 5),
    );
  } finally {
    rg.setBackend("cpu");
  }
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = rg.tensor(randomValues(2 * 3 * 64, 121), [2, 3, 8, 8], g);
  const labels = Int32Array.from([1, 4]);
  let baseline = -1;
  const losses: number[] = [];
  for (let step = 0; step < 20; step++) {
    const { logits, loss } = lossAndBackward(model, x, labels, 1);
    opt.step();
    opt.zeroGrad();
    losses.push((await loss.data())[0]);
    logits.dispose();
    loss.dispose();
    const live = g.memory().bytesInUse;
    if (step === 0) baseline = live; // momentum buffers appear in the first step
    else assert.is(live, baseline, `step ${step + 1}: ${live} bytes live, ${baseline} after step 1`);
  }
  assert.ok(losses[19] < losses[0], `the loss falls (${losses[0]} → ${losses[19]})`);
  model.dispose();
  x.dispose();
});

/** One SGD step of `model` on (x, labels), keeping nothing but the updated parameters. */
function trainStep(model: rg.nn.Module, x: rg.Tensor, labels: Int32Array, opt: rg.optim.SGD): void {
  const { logits, loss } = lossAndBackward(model, x, labels, 1);
  opt.step();
  opt.zeroGrad();
  logits.dispose();
  loss.dispose();
}

gpuTest("webgpu: repeated training steps find every bind group cached (none created after the third step), results unchanged", async (g) => {
  rg.manualSeed(3);
  const make = () => new rg.nn.Sequential(
    new rg.nn.Conv2d(3, 4, 3, { padding: 1 }), new rg.nn.BatchNorm2d(4), new rg.nn.ReLU(),
    new rg.nn.Conv2d(4, 4, 3, { padding: 1 }), new rg.nn.BatchNorm2d(4), new rg.nn.ReLU(),
    new rg.nn.MaxPool2d(2), new rg.nn.Flatten(), new rg.nn.Linear(4 * 4 * 4, 5),
  );
  const cpuModel = make();
  const gpuModel = mirrorOnGpu(make, cpuModel);
  const [xc, xg] = both(randomValues(2 * 3 * 64, 131), [2, 3, 8, 8], g);
  const labels = Int32Array.from([1, 4]);
  const train = (model: rg.nn.Module) => new rg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  const [optC, optG] = [train(cpuModel), train(gpuModel)];
  const created: number[] = [];
  for (let step = 0; step < 6; step++) {
    const before = g.context.bindGroupsCreated, dispatches = g.context.dispatches;
    for (const [model, x, opt] of [[cpuModel, xc, optC], [gpuModel, xg, optG]] as const) trainStep(model, x, labels, opt);
    await g.synchronize();
    assert.ok(g.context.dispatches - dispatches > 20, `step ${step + 1} recorded dispatches`);
    created.push(g.context.bindGroupsCreated - before);
  }
  assert.ok(created[0] > 20, `the first step creates its bind groups (${created[0]})`);
  assert.equal(created.slice(3), [0, 0, 0], `bind groups created per step: ${created.join(", ")}`);
  const [pc, pg] = [cpuModel.parameters(), gpuModel.parameters()];
  for (let i = 0; i < pc.length; i++) {
    const expected = pc[i].dataSync();
    assertClose(await pg[i].data(), expected, `parameter ${i} after 6 steps`, modelTol(expected));
  }
  for (const t of [cpuModel, gpuModel, xc, xg]) t.dispose();
});

gpuTest("webgpu: a training step submitted every 3 dispatches gives the same bits as one submitted whole", async (g) => {
  const make = () => new rg.nn.Sequential(
    new rg.nn.Conv2d(3, 4, 3, { padding: 1 }), new rg.nn.BatchNorm2d(4), new rg.nn.ReLU(),
    new rg.nn.MaxPool2d(2), new rg.nn.Flatten(), new rg.nn.Linear(4 * 4 * 4, 5),
  );
  const x = rg.tensor(randomValues(2 * 3 * 64, 141), [2, 3, 8, 8], g);
  const labels = Int32Array.from([2, 3]);
  const run = async (perSubmit: number) => {
    rg.manualSeed(4);
    rg.setBackend("webgpu");
    let model: rg.nn.Module;
    try {
      model = make();
    } finally {
      rg.setBackend("cpu");
    }
    const opt = new rg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const saved = g.context.dispatchesPerSubmit;
    g.context.dispatchesPerSubmit = perSubmit;
    const s0 = g.stats();
    try {
      for (let step = 0; step < 2; step++) trainStep(model, x, labels, opt);
      await g.synchronize();
    } finally {
      g.context.dispatchesPerSubmit = saved;
    }
    const s1 = g.stats();
    const values = await Promise.all(model.parameters().map((p) => p.data()));
    model.dispose();
    return { values, dispatches: s1.dispatches - s0.dispatches, submits: s1.submits - s0.submits };
  };
  const whole = await run(MAX_DISPATCHES_PER_SUBMIT);
  const parts = await run(3);
  assert.is(whole.submits, 1, "one submit for both steps");
  assert.ok(parts.submits >= Math.floor(parts.dispatches / 3), `${parts.submits} submits for ${parts.dispatches} dispatches`);
  whole.values.forEach((v, i) => assert.equal([...parts.values[i]], [...v], `parameter ${i}`));
  x.dispose();
});

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

gpuTest("webgpu: a device lost mid-training rejects the step's read-back with DeviceLostError, then every call throws it", async () => {
  for (const when of ["between steps", "during the read-back"] as const) {
    // A device of its own (destroyed below), with a small MLP on it built by hand.
    const other = (await createWebGPUBackend({ allowFallback: true }))!;
    assert.ok(other, "a second device");
    const weights = [[16, 12], [16], [5, 16], [5]].map((shape, k) =>
      rg.tensor(randomValues(shape.reduce((a, b) => a * b, 1), 160 + k, -0.3, 0.3), shape, other).requireGrad());
    const [w1, b1, w2, b2] = weights;
    const opt = new rg.optim.SGD(weights, { lr: 0.1, momentum: 0.9, nesterov: true });
    const x = rg.tensor(randomValues(8 * 12, 170), [8, 12], other);
    const labels = Int32Array.from({ length: 8 }, (_, i) => i % 5);
    const step = () => rg.tidy(() => {
      opt.zeroGrad();
      const loss = rg.crossEntropy(rg.linear(rg.relu(rg.linear(x, w1, b1)), w2, b2), labels);
      loss.backward();
      opt.step();
      return loss;
    });
    for (let i = 0; i < 2; i++) assert.ok(Number.isFinite((await step().data())[0]), "training runs before the loss");

    let outcome: unknown;
    try {
      // device.destroy() is what a driver reset looks like to the page: the device goes, the backend is not told.
      if (when === "between steps") other.device.destroy();
      const loss = step().data();
      if (when === "during the read-back") other.device.destroy();
      outcome = await withDeadline(loss, 30_000, `the read-back after a loss ${when}`);
    } catch (e) {
      outcome = e;
    }
    assert.instance(outcome, DeviceLostError, `${when}: got ${outcome}`);
    assert.instance(outcome, rg.RetrogradError);
    assert.match((outcome as Error).message, "device lost (destroyed)");
    assert.throws(() => step(), (e: unknown) => e instanceof DeviceLostError, `${when}: the next step throws at once`);
    assert.throws(() => other.alloc(4), (e: unknown) => e instanceof DeviceLostError);
  }
});

gpuTest("webgpu: an error the device reports (validation) surfaces as WebGPUError on the next call", async () => {
  const other = await createWebGPUBackend({ allowFallback: true });
  assert.ok(other, "a second device");
  // MAP_READ cannot be combined with STORAGE: a validation error nobody captures.
  other!.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
  await other!.device.queue.onSubmittedWorkDone();
  await new Promise((resolve) => setTimeout(resolve, 50)); // the error event is delivered asynchronously
  assert.throws(() => other!.alloc(4), (e: unknown) => e instanceof WebGPUError && /error/.test((e as Error).message));
  other!.destroy();
});

gpuTest("webgpu: an out-of-memory error the device reports surfaces as OutOfMemoryError (the class the CPU raises too) on the next call", async () => {
  const other = await createWebGPUBackend({ allowFallback: true });
  assert.ok(other, "a second device");
  // lavapipe allocates from host memory, which a test should not exhaust: the device is sent
  // the event it raises when an allocation fails.
  const error = new GPUOutOfMemoryError("allocation failed");
  other!.device.dispatchEvent(new GPUUncapturedErrorEvent("uncapturederror", { error }));
  assert.throws(() => other!.alloc(4),
    (e: unknown) => e instanceof OutOfMemoryError && e instanceof rg.OutOfMemoryError && /out of GPU memory/.test((e as Error).message));
  other!.destroy();
});

test.run();
