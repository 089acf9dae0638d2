/**
 * Threads on the CPU backend: every split kernel (the generic op tier's included) and a whole
 * ResNet-20 training step give bitwise the same bytes at 1 and 2 threads (outputs, gradients,
 * updated weights, running statistics), and the 2-thread runs really were split. Every test runs
 * on the default kernel build (the relaxed build where the start-up probe finds relaxed_madd
 * fused, as on this project's FMA machines), and the gemm and ResNet-20 step on the other build
 * too. Under Node the worker_threads host comes from cli/node_threads.ts; under Deno web Workers are built in.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { type CpuBackend, getTileLoads, setTileLoads, type TileLoadsChoice, tileLoadsTiming } from "../src/backend/cpu/index.ts";
import { chooseTileLoads } from "../src/backend/cpu/tile_loads.ts";
import { PARTS_PER_THREAD } from "../src/backend/cpu/runner.ts";
import { type Broadcast4, type ConvGeometry, type DeviceBuffer, type PoolGeometry, UNARY_OPS } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { recordSteps } from "./helpers.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { lcgValues as rand } from "./support/conv3x3.ts";

installNodeThreads();
enableNodeRelaxedSimd();
// The default build, chosen again now that Node 20 has relaxed SIMD: every test below runs on it
// (the relaxed build where the probe finds relaxed_madd fused), the last one on the other build too.
const defaultKernels = await rg.setCpuKernels("auto");
console.log(`threads.test: default kernels ${defaultKernels} (relaxed_madd ${rg.relaxedMaddRounding()})`);
const be = rg.getBackend("cpu") as CpuBackend;

function buf(n: number, seed: number): DeviceBuffer {
  const b = be.alloc(n);
  be.write(b, rand(n, seed));
  return b;
}

function bytesEqual(a: Float32Array, b: Float32Array, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let bad = -1;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) { bad = i >> 2; break; }
  assert.ok(bad < 0, `${what}: differs at element ${bad} (${a[bad]} vs ${b[bad]})`);
}

/** Run `fn` at 1 and at 2 threads; it returns named results; compare every byte. */
async function sameAt1And2(name: string, fn: () => [string, Float32Array][]): Promise<void> {
  assert.is(await rg.setThreads(1), 1);
  const one = fn();
  assert.is(await rg.setThreads(2), 2, "2 threads available");
  const before = be.splitCalls;
  const two = fn();
  assert.ok(be.splitCalls > before, `${name}: work was split across threads`);
  assert.is(one.length, two.length);
  for (let i = 0; i < one.length; i++) bytesEqual(one[i][1], two[i][1], `${name} ${one[i][0]}`);
}

test("setThreads / getThreads", async () => {
  assert.is(await rg.setThreads(2), 2);
  assert.is(rg.getThreads(), 2);
  assert.is(await rg.setThreads(1), 1);
  assert.is(rg.getThreads(), 1);
  assert.ok((await rg.setThreads()) >= 1);
});

test("gemm: rows (M not divisible by threads), columns, transposes, beta", async () => {
  const shapes: [boolean, boolean, number, number, number, number][] = [
    [false, false, 131, 67, 129, 0], [true, false, 133, 61, 140, 0.5], [false, true, 21, 301, 200, 0],
    [true, true, 99, 97, 250, 1], [false, false, 257, 33, 300, 0],
  ];
  await sameAt1And2("gemm", () => shapes.map(([ta, tb, M, N, K, beta], i) => {
    const A = buf(M * K, 1 + i), B = buf(K * N, 2 + i), C = buf(M * N, 3 + i);
    be.gemm({ transA: ta, transB: tb, M, N, K, alpha: 0.75, a: A, b: B, beta, c: C });
    const out = be.readSync(C);
    [A, B, C].forEach((b) => be.free(b));
    return [`${ta ? "T" : "N"}${tb ? "T" : "N"} ${M}x${N}x${K}`, out] as [string, Float32Array];
  }));
});

function geom(N: number, C: number, H: number, W: number, O: number, K: number, S: number, P: number, G: number): ConvGeometry {
  const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - K) / S) + 1;
  return { N, C, H, W, O, KH: K, KW: K, SH: S, SW: S, PH: P, PW: P, DH: 1, DW: 1, G, OH, OW };
}

/** Forward, input and weight gradient of each geometry on seeded buffers (seeds from `seed` on), read back. */
function convPasses(gs: ConvGeometry[], seed: number): [string, Float32Array][] {
  return gs.flatMap((g, i) => {
    const xs = g.N * g.C * g.H * g.W, ws = g.O * (g.C / g.G) * g.KH * g.KW, ys = g.N * g.O * g.OH * g.OW;
    const x = buf(xs, seed + i), w = buf(ws, seed + 10 + i), y = be.alloc(ys), dy = buf(ys, seed + 20 + i);
    const dx = be.alloc(xs), dw = be.alloc(ws);
    be.conv2dForward(x, w, y, g);
    be.conv2dBackwardInput(dy, w, dx, g);
    be.conv2dBackwardWeight(dy, x, dw, g);
    const out: [string, Float32Array][] = [[`y${i}`, be.readSync(y)], [`dx${i}`, be.readSync(dx)], [`dw${i}`, be.readSync(dw)]];
    [x, w, y, dy, dx, dw].forEach((b) => be.free(b));
    return out;
  });
}

test("conv2d forward and both backward passes (groups, strides, 1x1, odd batch)", async () => {
  const gs = [
    geom(7, 16, 16, 16, 32, 3, 1, 1, 2), // grouped, direct path
    geom(5, 3, 32, 32, 16, 3, 1, 1, 1), // the stem: 3 input channels
    geom(6, 16, 17, 17, 24, 3, 2, 1, 1), // strided, im2col path
    geom(9, 32, 8, 8, 64, 1, 1, 0, 1), // pointwise
    geom(4, 12, 10, 10, 12, 3, 1, 1, 3), // groups 3, odd channels per group
    geom(19, 128, 4, 4, 128, 3, 1, 1, 1), // filters packed per chunk of images (16 + 3 at 1 thread)
    geom(9, 256, 4, 4, 256, 3, 1, 1, 1), // a bank so large that the images are cut once per thread (5 + 4)
  ];
  await sameAt1And2("conv2d", () => convPasses(gs, 10));
});

test("conv2d by Winograd F(2×2, 3×3): forward and both gradients (odd planes and channels, C > KC)", async () => {
  const gs = [
    geom(7, 16, 16, 16, 32, 3, 1, 1, 1),
    geom(5, 5, 13, 11, 10, 3, 1, 1, 1), // odd plane, channels not multiples of 4
    geom(3, 300, 6, 5, 12, 3, 1, 1, 1), // two KC blocks of input channels
    geom(18, 16, 8, 8, 16, 3, 1, 1, 1), // weight gradient blocks of 4 whole images, groups of 4-5
  ];
  const before = be.convAlgorithm;
  be.convAlgorithm = "winograd";
  try {
    await sameAt1And2("winograd", () => convPasses(gs, 50));
  } finally {
    be.convAlgorithm = before;
  }
});

test("batch norm (train/eval forward and backward, fused with add and ReLU), pooling, elementwise, broadcast, reduce, sgd", async () => {
  await sameAt1And2("misc", () => {
    const N = 8, C = 16, HW = 32 * 32, n = N * C * HW;
    const x = buf(n, 40), dy = buf(n, 41), gamma = buf(C, 42), beta = buf(C, 43);
    const y = be.alloc(n), dx = be.alloc(n), mean = be.alloc(C), invstd = be.alloc(C);
    const rm = buf(C, 44), rv = be.alloc(C), dg = be.alloc(C), db = be.alloc(C);
    be.fill(rv, 1.5);
    const out: [string, Float32Array][] = [];
    const take = (name: string, b: DeviceBuffer) => out.push([name, be.readSync(b)]);
    const input = { x, gamma, beta, N, C, HW, eps: 1e-5 };
    const running = { mean: rm, var: rv, momentum: 0.1 };
    const batch = { kind: "batch" as const, mean, invstd };
    be.batchNormTrainForward({ ...input, y, saveMean: mean, saveInvstd: invstd, running });
    take("bn y", y); take("bn mean", mean); take("bn invstd", invstd); take("bn rm", rm); take("bn rv", rv);
    be.batchNormBackward({ ...input, dy, stats: batch, dx, dgamma: dg, dbeta: db });
    take("bn dx", dx); take("bn dg", dg); take("bn db", db);
    const res = buf(n, 50), dres = be.alloc(n);
    be.batchNormReluTrainForward({ ...input, residual: res, y, saveMean: mean, saveInvstd: invstd, running });
    take("bn+add+relu y", y); take("bn+add+relu rm", rm); take("bn+add+relu rv", rv);
    be.batchNormReluBackward({ ...input, dy, y, stats: batch, dx, dgamma: dg, dbeta: db, dresidual: dres });
    take("bn+add+relu dx", dx); take("bn+add+relu dg", dg); take("bn+add+relu db", db); take("bn+add+relu dres", dres);
    be.batchNormReluTrainForward({ ...input, residual: null, y, saveMean: mean, saveInvstd: invstd, running: null });
    take("bn+relu y", y);
    be.batchNormReluBackward({ ...input, dy, y, stats: batch, dx, dgamma: dg, dbeta: db, dresidual: null });
    take("bn+relu dx", dx); take("bn+relu dg", dg); take("bn+relu db", db);
    be.batchNormEvalForward({ ...input, y, runningMean: rm, runningVar: rv, relu: false, residual: null });
    take("bn eval y", y);
    be.batchNormBackward({ ...input, dy, stats: { kind: "running", mean: rm, var: rv }, dx, dgamma: dg, dbeta: db });
    take("bn eval dx", dx); take("bn eval dg", dg);
    const pg: PoolGeometry = { N, C, H: 32, W: 32, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, OH: 16, OW: 16 };
    const py = be.alloc(N * C * 256), am = be.alloc(N * C * 256), pdy = buf(N * C * 256, 45);
    be.maxPoolForward(x, py, am, pg); take("maxpool y", py); take("maxpool argmax", be.readSync(am) && new Float32Array(be.readSync(am).buffer));
    be.maxPoolBackward(pdy, am, dx, pg); take("maxpool dx", dx);
    be.avgPoolForward(x, py, { ...pg, countIncludePad: false }); take("avgpool y", py);
    be.avgPoolBackward(pdy, dx, { ...pg, countIncludePad: true }); take("avgpool dx", dx);
    be.reluForward(x, y); take("relu", y);
    be.reluBackward(x, dy, dx); take("relu dx", dx);
    be.sigmoidForward(x, y); take("sigmoid", y);
    be.sigmoidBackward(y, dy, dx); take("sigmoid dx", dx);
    const n1 = n - 5; // a length that is no multiple of the split alignment
    const a1 = buf(n1, 46), b1 = buf(n1, 47);
    be.axpy(0.3, a1, b1); take("axpy", b1);
    be.scale(a1, b1, -1.7); take("scale", b1);
    be.copy(a1, b1); take("copy", b1);
    be.fill(b1, 0.25); take("fill", b1);
    // broadcasts: [N,C,HW] ⊙ [1,C,1] and [N,C,HW] + [N,C,HW]
    const bcC: Broadcast4 = { dims: [1, N, C, HW], aStrides: [0, C * HW, HW, 1], bStrides: [0, 0, 1, 0] };
    be.binary("mul", x, gamma, y, bcC); take("mul bcast", y);
    const same: Broadcast4 = { dims: [1, 1, 1, n], aStrides: [0, 0, 0, 1], bStrides: [0, 0, 0, 1] };
    be.binary("div", x, dy, y, same); take("div", y);
    // reduce over the batch: [N, C·HW] → [C·HW] (split over the C·HW outputs: axis 1 leads after N)
    const r1 = be.alloc(C * HW);
    const red: Broadcast4 = { dims: [1, 1, N, C * HW], aStrides: [0, 0, 0, 1], bStrides: [0, 0, 0, 1] };
    be.reduceBroadcast(x, r1, red); take("reduce batch", r1);
    // reduce over HW: [N·C, HW] → [N·C] (split over N·C rows)
    const r2 = be.alloc(N * C);
    const red2: Broadcast4 = { dims: [1, 1, N * C, HW], aStrides: [0, 0, 1, 0], bStrides: [0, 0, 1, 0] };
    be.reduceBroadcast(x, r2, red2); take("reduce rows", r2);
    const p = buf(n1, 48), m = buf(n1, 49);
    be.sgdStep([{ param: p, grad: a1, momentum: m, firstStep: false }], { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true });
    take("sgd p", p); take("sgd m", m);
    [x, dy, gamma, beta, y, dx, mean, invstd, rm, rv, dg, db, res, dres, py, am, pdy, a1, b1, r1, r2, p, m].forEach((b) => be.free(b));
    return out;
  });
});

test("generic tier: every unary op and its gradient, maximum/minimum/comparisons, where, axis reductions (both splits), scatter, Bernoulli", async () => {
  await sameAt1And2("generic", () => {
    const n = 3 * 65536 + 7; // split into ranges, with a ragged end
    const values = rand(n, 60).map((v, i) => (i % 97 === 3 ? NaN : i % 89 === 5 ? Infinity : 3 * v));
    const x = be.alloc(n), y = be.alloc(n), dy = buf(n, 61), dx = be.alloc(n);
    be.write(x, values);
    const out: [string, Float32Array][] = [];
    let splits = be.splitCalls;
    /** Keep the outputs of the kernel call just made, which must have been split when threaded. */
    const take = (name: string, ...bufs: DeviceBuffer[]) => {
      if (rg.getThreads() > 1) assert.ok(be.splitCalls > splits, `${name}: the call was split`);
      splits = be.splitCalls;
      bufs.forEach((b, k) => out.push([`${name} ${k}`, be.readSync(b)]));
    };
    for (const op of UNARY_OPS) {
      const params = op === "pow" ? { exponent: 2.5 } : op === "clamp" ? { min: -1, max: 0.5 } : {};
      be.unary(op, x, y, params); take(op, y);
      be.unaryBackward(op, x, y, dy, dx, params); take(`${op} dx`, dx);
    }
    const same: Broadcast4 = { dims: [1, 1, 1, n], aStrides: [0, 0, 0, 1], bStrides: [0, 0, 0, 1] };
    for (const op of ["maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"] as const) {
      be.binary(op, x, dy, y, same); take(op, y);
    }
    // where over [3, 65538] with a per-row condition and a per-column b
    const rows = 3, cols = 65538;
    const cond = be.alloc(rows), w = be.alloc(rows * cols);
    be.write(cond, new Float32Array([1, 0, NaN]));
    be.where(cond, x, dy, w, { dims: [1, rows, cols, 1], cStrides: [0, 1, 0, 0], aStrides: [0, cols, 1, 0], bStrides: [0, 0, 1, 0] });
    take("where", w);
    // axis reductions: split by blocks of inner outputs ([6, 5, 6007], [3, 10, 6007]) and of outer ones ([6007, 31, 1])
    for (const view of [{ outer: 6, size: 5, inner: 6007 }, { outer: 3, size: 10, inner: 6007 }, { outer: 6007, size: 31, inner: 1 }]) {
      const outputs = view.outer * view.inner;
      const r = be.alloc(outputs), idx = be.alloc(outputs);
      const label = `[${view.outer}, ${view.size}, ${view.inner}]`;
      be.reduceAxis(x, r, view, { op: "sum", divisor: 3 }); take(`mean ${label}`, r);
      for (const op of ["max", "min"] as const) {
        be.reduceAxis(x, r, view, { op, indices: idx }); take(`${op} ${label}`, r, idx);
        be.scatterAxis(dy, idx, dx, view); take(`${op} scatter ${label}`, dx);
      }
      be.free(r);
      be.free(idx);
    }
    be.random(y, { kind: "bernoulli", p: 0.3 }, { key: 5, counter: 123456 }); take("bernoulli", y);
    [x, y, dy, dx, w, cond].forEach((b) => be.free(b));
    return out;
  });
});

/** Two seeded ResNet-20 training steps: logits, losses, gradients, then the state dict. */
function resnetSteps(): [string, Float32Array][] {
  rg.manualSeed(7);
  const model = rg.models.resnet20({ numClasses: 10 });
  const x = rg.randn([12, 3, 32, 32]);
  const out = recordSteps(model, x, Array.from({ length: 12 }, (_, i) => (i * 7) % 10));
  model.dispose();
  x.dispose();
  return out;
}

test("ResNet-20 training step: loss, gradients, updated weights, running stats", async () => {
  await sameAt1And2("resnet20", resnetSteps);
});

test("both kernel builds: relaxed (fused) differs from plain in low bits only; the non-default build is the same at 1 and 2 threads too", async () => {
  const gemm = (): [string, Float32Array][] => {
    const a = buf(300 * 517, 11), b = buf(517 * 260, 12), c = be.alloc(300 * 260);
    be.gemm({ transA: false, transB: false, M: 300, N: 260, K: 517, alpha: 1, a, b, beta: 0, c });
    const out = be.readSync(c);
    [a, b, c].forEach((x) => be.free(x));
    return [["gemm", out]];
  };
  assert.is(defaultKernels, rg.relaxedMaddRounding() === "fused" ? "relaxed" : "plain", "the default follows the probe");
  assert.is(await rg.setThreads(1), 1);
  assert.is(await rg.setCpuKernels("plain"), "plain");
  const plain = gemm()[0][1];
  // Deno's V8 has relaxed SIMD; Node 20's behind a flag that enableNodeRelaxedSimd sets.
  assert.is(await rg.setCpuKernels("relaxed"), "relaxed", "the relaxed build runs");
  const relaxed = gemm()[0][1];
  let differ = 0;
  for (let i = 0; i < plain.length; i++) {
    assert.ok(Math.abs(plain[i] - relaxed[i]) <= 1e-4 * (1 + Math.abs(plain[i])), `relaxed gemm element ${i}`);
    if (plain[i] !== relaxed[i]) differ++;
  }
  // With a fused multiply-add, one rounding instead of two changes some low bits: the fused build runs.
  if (rg.relaxedMaddRounding() === "fused") assert.ok(differ > 0, "relaxed results differ from plain in low bits");
  const other = defaultKernels === "relaxed" ? "plain" : "relaxed";
  assert.is(await rg.setCpuKernels(other), other);
  await sameAt1And2(`${other} gemm`, gemm);
  await sameAt1And2(`${other} resnet20`, resnetSteps); // the direct convolutions use madd too
  assert.is(await rg.setCpuKernels("auto"), defaultKernels);
  assert.is(await rg.setThreads(2), 2);
  bytesEqual(defaultKernels === "plain" ? plain : relaxed, gemm()[0][1], "the default build again, 2 threads");
});

test("the plain build's two tile-load shapes (splat, shuffle) give the same bytes: gemm, direct and Winograd convolutions, a ResNet-20 step, at 1 and 2 threads", async () => {
  // the last: two KC blocks of reduction channels (the strided tile's accumulate mode)
  const wino = [geom(6, 16, 16, 16, 24, 3, 1, 1, 1), geom(18, 16, 8, 8, 16, 3, 1, 1, 1), geom(3, 300, 6, 5, 12, 3, 1, 1, 1)];
  const everything = (): [string, Float32Array][] => {
    const a = buf(133 * 261, 21), b = buf(261 * 70, 22), c = be.alloc(133 * 70);
    be.gemm({ transA: false, transB: false, M: 133, N: 70, K: 261, alpha: 1, a, b, beta: 0, c });
    const out: [string, Float32Array][] = [["gemm", be.readSync(c)]];
    [a, b, c].forEach((x) => be.free(x));
    out.push(...convPasses([geom(5, 3, 32, 32, 16, 3, 1, 1, 1), geom(4, 32, 9, 9, 16, 3, 1, 1, 1)], 70));
    const before = be.convAlgorithm;
    be.convAlgorithm = "winograd";
    try {
      out.push(...convPasses(wino, 80));
    } finally {
      be.convAlgorithm = before;
    }
    return [...out, ...resnetSteps()];
  };
  assert.is(await rg.setCpuKernels("plain"), "plain");
  const measured = getTileLoads(); // the probe's choice (timed on first use of the plain build)
  assert.ok((["splat", "shuffle"] as unknown[]).includes(measured), `probe chose ${measured}`);
  const timing = tileLoadsTiming();
  assert.ok(timing !== null && timing.splatMs > 0 && timing.shuffleMs > 0 && timing.clockStepMs > 0, "the probe timed both shapes");
  console.log(`threads.test: plain tile loads ${measured} (probe: splat ${timing!.splatMs.toFixed(3)} ms, shuffle ${timing!.shuffleMs.toFixed(3)} ms)`);
  let reference: [string, Float32Array][] | null = null;
  for (const shape of ["splat", "shuffle"] as const) {
    assert.is(await setTileLoads(shape), shape);
    for (const n of [1, 2]) {
      assert.is(await rg.setThreads(n), n);
      // every thread's instance took the shape (the bytes below cannot tell: they are the same either way)
      assert.equal(be.tileLoadsByThread(), Array(n).fill(shape === "shuffle" ? 1 : 0), `${shape}, ${n} threads: each instance's shape`);
      const before = be.splitCalls;
      const got = everything();
      if (n === 2) assert.ok(be.splitCalls > before, `${shape}: work was split across threads`);
      reference ??= got;
      assert.is(got.length, reference.length);
      for (let i = 0; i < got.length; i++) bytesEqual(got[i][1], reference[i][1], `${shape}, ${n} threads: ${got[i][0]}`);
    }
  }
  assert.is(await setTileLoads("auto"), measured, "auto: the probe's choice again");
  assert.is(await rg.setCpuKernels("auto"), defaultKernels);
  try {
    await setTileLoads("fast" as TileLoadsChoice);
    assert.unreachable("an unknown shape is refused");
  } catch (e) {
    assert.instance(e, rg.ValueError);
    assert.match((e as Error).message, /"fast" is not one of "auto", "splat", "shuffle"/);
  }
});

test("the tile-load probe's rule: the shuffles only when clearly faster, and never on a tie the clock cannot resolve", () => {
  const fine = 0.0002; // Node's and Deno's clock step, in ms
  assert.is(chooseTileLoads({ splatMs: 1.07, shuffleMs: 1.005, clockStepMs: fine }), "shuffle"); // Deno, quiet host
  assert.is(chooseTileLoads({ splatMs: 0.76, shuffleMs: 0.98, clockStepMs: fine }), "splat"); // Node, quiet host
  assert.is(chooseTileLoads({ splatMs: 1.2, shuffleMs: 1.19, clockStepMs: fine }), "splat", "a near tie keeps the splats");
  assert.is(chooseTileLoads({ splatMs: 1, shuffleMs: 0, clockStepMs: 1 }), "splat", "a 1 ms clock cannot time a 1 ms call");
  assert.is(chooseTileLoads({ splatMs: 1.1, shuffleMs: 1.0, clockStepMs: 0.1 }), "splat", "within two clock steps");
});

test("memory grows while threaded: workers write into the new pages", async () => {
  assert.is(await rg.setThreads(2), 2);
  const before = be.splitCalls;
  const n = (64 << 20) / 4; // 64 MiB: past the current heap top, so the memory grows
  const a = be.alloc(n), b = be.alloc(n);
  be.fill(a, 1.5);
  be.scale(a, b, 2);
  assert.ok(be.splitCalls >= before + 2);
  const v = be.readSync(b);
  assert.is(v[0], 3);
  assert.is(v[n - 1], 3);
  assert.ok(v.every((x) => x === 3));
  be.free(a);
  be.free(b);
});

test("workers take their share of a split call that comes while they poll and one that comes after they sleep", async () => {
  assert.is(await rg.setThreads(2), 2);
  const n = 1 << 22, parts = 2 * PARTS_PER_THREAD; // a part is a fraction of a millisecond
  const a = be.alloc(n), b = be.alloc(n);
  be.fill(a, 1.5);
  const busyWait = (ms: number) => { const until = performance.now() + ms; while (performance.now() < until); };
  // 0.05 ms after the last call the worker is still polling; after 20 ms it sleeps in Atomics.wait.
  for (const gapMs of [0.05, 20]) {
    let shared = 0;
    for (let i = 0; i < 10; i++) {
      busyWait(gapMs);
      be.fill(b, 0);
      busyWait(gapMs);
      const before = be.splitCalls;
      be.scale(a, b, 2);
      assert.is(be.splitCalls, before + 1, "the scale was split");
      if (be.lastMine < parts) shared++;
      const v = be.readSync(b);
      assert.ok(v.every((x) => x === 3), `gap ${gapMs} ms, call ${i}: every element scaled`);
    }
    assert.ok(shared > 0, `gap ${gapMs} ms: the worker ran part of none of 10 calls`);
  }
  be.free(a);
  be.free(b);
});

test("threads stop", async () => {
  assert.is(await rg.setThreads(1), 1);
});

test.run();
