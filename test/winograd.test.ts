/**
 * The Winograd F(2×2, 3×3) kernels of the CPU backend (assembly/winograd.ts) against a float64
 * direct convolution: the forward pass, the input gradient and the weight gradient on many shapes (odd planes,
 * channel counts that are not multiples of 4 or 8, batch 1, a 1×1 plane, more than KC = 256
 * input or output channels), each within a bound scaled to its terms (|err| ≤ 8·2⁻²⁴·Σ|x·w|, the same
 * form of bound as the direct kernels' and several times under what an F(2×2, 3×3) kernel
 * with a broken transform gives); the adjoint identities ⟨conv(x, w), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩
 * (a gradient check of the three); the switch (convAlgorithm, setConvAlgorithm): "auto" is the
 * default and follows its table, and what Winograd cannot do (stride 2, groups, 5×5, no
 * padding) falls back to the direct kernels bit for bit.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { type CpuBackend, createCpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry, DeviceBuffer } from "../src/backend/backend.ts";
import { conv3x3Errors, conv3x3Reference, conv3x3WeightGradReference, flipTranspose, lcgValues as rand } from "./support/conv3x3.ts";

const be = rg.getBackend("cpu") as CpuBackend;
/** Worst |err| / (2⁻²⁴·Σ|x·w|) allowed (both algorithms stay under 5 on the ResNet layers of bench/winograd.ts). */
const BOUND = 8;

function geom(N: number, C: number, H: number, W: number, O: number, K = 3, S = 1, P = 1, G = 1): ConvGeometry {
  const OH = Math.floor((H + 2 * P - K) / S) + 1, OW = Math.floor((W + 2 * P - K) / S) + 1;
  return { N, C, H, W, O, KH: K, KW: K, SH: S, SW: S, PH: P, PW: P, DH: 1, DW: 1, G, OH, OW };
}

function upload(v: Float32Array): DeviceBuffer {
  const b = be.alloc(v.length);
  be.write(b, v);
  return b;
}

type Pass = "forward" | "backwardInput" | "backwardWeight";

/**
 * One pass of the backend under `algorithm`: forward y = conv(a, b = w), input gradient
 * dx = conv_inputgrad(a = dy, b = w), weight gradient dw(a = x, b = dy).
 */
function run(algorithm: rg.ConvAlgorithm, pass: Pass, a: Float32Array, b: Float32Array, g: ConvGeometry): Float32Array {
  const before = be.convAlgorithm;
  be.convAlgorithm = algorithm;
  const outLen = pass === "forward" ? g.N * g.O * g.OH * g.OW : pass === "backwardInput" ? g.N * g.C * g.H * g.W : g.O * (g.C / g.G) * g.KH * g.KW;
  const ab = upload(a), bb = upload(b), out = be.alloc(outLen);
  try {
    if (pass === "forward") be.conv2dForward(ab, bb, out, g);
    else if (pass === "backwardInput") be.conv2dBackwardInput(ab, bb, out, g);
    else be.conv2dBackwardWeight(bb, ab, out, g);
    return be.readSync(out);
  } finally {
    [ab, bb, out].forEach((buf) => be.free(buf));
    be.convAlgorithm = before;
  }
}

/** Worst |got − ref| / (2⁻²⁴·Σ|x·w|) over the outputs (and outputs without terms must be 0). */
function worstError(got: Float32Array, ref: { y: Float64Array; mag: Float64Array }): number {
  const e = conv3x3Errors(got, ref);
  assert.ok(e.zeroOk, "an output without terms is not 0");
  return e.maxScaled;
}

const SHAPES: [number, number, number, number, number][] = [
  // N, C, H, W, O
  [1, 3, 7, 7, 5], // odd plane, C and O not multiples of 4
  [2, 5, 6, 5, 9], // odd width
  [1, 16, 8, 8, 16],
  [3, 13, 9, 13, 11], // odd everything, a ragged group of 4 tiles
  [2, 7, 1, 1, 6], // a 1×1 plane: one tile, mostly padding
  [1, 6, 2, 11, 10], // one tile row
  [2, 24, 10, 3, 8],
  [1, 6, 140, 5, 4], // narrow but tall (210 tiles): tile-row blocks, not the dense layout
  [1, 300, 5, 6, 12], // C > KC: the forward products sum two KC blocks
  [2, 12, 5, 6, 270], // O > KC: the input gradient's products sum two KC blocks
  [2, 32, 32, 32, 32], // a ResNet-20 stage-2-sized plane, several tile-row blocks
  [1, 64, 8, 8, 70],
  // The weight gradient's blocks span whole images on small planes (4 images of 8×8; 16 of 3×3
  // or 4×4, whose tiles are numbered densely), and the backend cuts the batch into groups: the
  // groups sum full blocks and partial ones.
  [20, 16, 8, 8, 16],
  [40, 7, 3, 3, 6],
  [70, 20, 4, 4, 24],
  [2, 530, 5, 5, 3], // C > 512: the weight gradient's output transform takes each m's k in two runs
];

for (const pass of ["forward", "backwardInput", "backwardWeight"] as const) {
  test(`winograd ${pass}: within ${BOUND}·ε·Σ|x·w| of float64 on ${SHAPES.length} shapes, and not the direct kernel's bits`, () => {
    let differs = 0;
    for (const [i, [N, C, H, W, O]] of SHAPES.entries()) {
      const g = geom(N, C, H, W, O);
      const x = rand(N * C * H * W, 200 + i), w = rand(O * C * 9, 100 + i), dy = rand(N * O * H * W, 400 + i);
      // the input gradient is the forward conv of dy with the flipped, transposed filters
      const [a, b, ref] = pass === "forward" ? [x, w, conv3x3Reference(x, w, N, C, O, H, W)]
        : pass === "backwardInput" ? [dy, w, conv3x3Reference(dy, flipTranspose(w, C, O), N, O, C, H, W)]
        : [x, dy, conv3x3WeightGradReference(x, dy, N, C, O, H, W)];
      const wino = run("winograd", pass, a, b, g);
      const direct = run("direct", pass, a, b, g);
      const worst = worstError(wino, ref);
      assert.ok(worst <= BOUND, `${pass} ${N}×${C}→${O} ${H}×${W}: error ${worst.toFixed(2)}·ε·Σ|x·w| > ${BOUND}`);
      assert.ok(worstError(direct, ref) <= BOUND, "the direct kernel against the same reference");
      if (wino.some((v, j) => v !== direct[j])) differs++;
    }
    // Rounding differs, so (unless Winograd did not run) some outputs differ from the direct path's.
    assert.ok(differs >= SHAPES.length - 2, `only ${differs} of ${SHAPES.length} shapes differ from the direct kernel: did Winograd run?`);
  });
}

test("winograd on narrow planes (under 4 tiles a row, tiles numbered across rows and images): the same bits as the same images zero-extended to a wide plane", () => {
  const WIDE = 12; // 6 tiles a row: the four-at-a-time layout
  const widen = (v: Float32Array, planes: number, H: number, W: number): Float32Array => {
    const out = new Float32Array(planes * H * WIDE);
    for (let p = 0; p < planes; p++) for (let h = 0; h < H; h++) out.set(v.subarray((p * H + h) * W, (p * H + h + 1) * W), (p * H + h) * WIDE);
    return out;
  };
  const narrowOf = (v: Float32Array, planes: number, H: number, W: number): Float32Array => {
    const out = new Float32Array(planes * H * W);
    for (let p = 0; p < planes; p++) for (let h = 0; h < H; h++) out.set(v.subarray((p * H + h) * WIDE, (p * H + h) * WIDE + W), (p * H + h) * W);
    return out;
  };
  // N, C, H, W, O: ResNet-18's 4×4; odd planes; blocks of several images with a partial last one
  // and padding tiles (300 channels: 2 images of 6 tiles a block); two KC blocks each way.
  for (const [i, [N, C, H, W, O]] of [[3, 9, 4, 4, 12], [2, 16, 6, 6, 8], [4, 6, 3, 5, 7], [5, 300, 5, 3, 10], [3, 10, 5, 3, 300]].entries()) {
    const x = rand(N * C * H * W, 500 + i), w = rand(O * C * 9, 510 + i), dy = rand(N * O * H * W, 520 + i);
    const y = run("winograd", "forward", x, w, geom(N, C, H, W, O));
    const yWide = run("winograd", "forward", widen(x, N * C, H, W), w, geom(N, C, H, WIDE, O));
    const dx = run("winograd", "backwardInput", dy, w, geom(N, C, H, W, O));
    const dxWide = run("winograd", "backwardInput", widen(dy, N * O, H, W), w, geom(N, C, H, WIDE, O));
    for (const [what, got, wide, planes] of [["forward", y, yWide, N * O], ["input gradient", dx, dxWide, N * C]] as const) {
      const want = narrowOf(wide, planes, H, W);
      const bad = got.findIndex((v, j) => !Object.is(v, want[j]));
      assert.is(bad, -1, `${what} ${N}×${C}→${O} ${H}×${W}: element ${bad} is ${got[bad]}, the wide plane gives ${want[bad]}`);
    }
  }
});

test("winograd: ⟨conv(x, w), dy⟩ = ⟨x, conv_inputgrad(dy, w)⟩ = ⟨w, conv_weightgrad(x, dy)⟩ (a gradient check of the three)", () => {
  for (const [i, [N, C, H, W, O]] of [[2, 5, 7, 9, 6], [1, 40, 12, 12, 24]].entries()) {
    const g = geom(N, C, H, W, O);
    const x = rand(N * C * H * W, 300 + i), w = rand(O * C * 9, 310 + i), dy = rand(N * O * H * W, 320 + i);
    const y = run("winograd", "forward", x, w, g), dx = run("winograd", "backwardInput", dy, w, g);
    const dw = run("winograd", "backwardWeight", x, dy, g);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, j) => s + v * b[j], 0);
    const mag = y.reduce((s, v, j) => s + Math.abs(v * dy[j]), 0);
    const lhs = dot(y, dy);
    assert.ok(Math.abs(lhs - dot(x, dx)) <= 1e-5 * mag, `case ${i}: ⟨y, dy⟩ = ${lhs}, ⟨x, dx⟩ = ${dot(x, dx)}`);
    assert.ok(Math.abs(lhs - dot(w, dw)) <= 1e-5 * mag, `case ${i}: ⟨y, dy⟩ = ${lhs}, ⟨w, dw⟩ = ${dot(w, dw)}`);
  }
});

test("convAlgorithm: auto by default; Winograd falls back to the direct kernels where it does not apply", () => {
  assert.is(rg.getConvAlgorithm(), "auto");
  assert.is(be.convAlgorithm, "auto");
  assert.is(createCpuBackend().convAlgorithm, "auto", "a backend created later");
  const cases: [string, ConvGeometry][] = [
    ["stride 2", geom(2, 16, 9, 9, 16, 3, 2, 1)],
    ["groups 2", geom(2, 16, 8, 8, 16, 3, 1, 1, 2)],
    ["5×5", geom(1, 8, 9, 9, 8, 5, 1, 2)],
    ["no padding", geom(1, 8, 9, 9, 8, 3, 1, 0)],
  ];
  for (const [name, g] of cases) {
    for (const pass of ["forward", "backwardInput"] as const) {
      const w = rand(g.O * (g.C / g.G) * g.KH * g.KW, 7);
      const a = rand(pass === "forward" ? g.N * g.C * g.H * g.W : g.N * g.O * g.OH * g.OW, 8);
      assert.equal(run("winograd", pass, a, w, g), run("direct", pass, a, w, g), `${name} ${pass}`);
    }
  }
});

test("auto: Winograd for shapes in its table (32→32 14×14, 512→512 4×4), the direct kernels for those that are not (3→16 stems)", () => {
  const bits = (algorithm: rg.ConvAlgorithm, pass: Pass, g: ConvGeometry) => {
    const x = rand(g.N * g.C * g.H * g.W, 10), w = rand(g.O * g.C * 9, 9), dy = rand(g.N * g.O * g.H * g.W, 11);
    return pass === "forward" ? run(algorithm, pass, x, w, g) : pass === "backwardInput" ? run(algorithm, pass, dy, w, g) : run(algorithm, pass, x, dy, g);
  };
  for (const pass of ["forward", "backwardInput", "backwardWeight"] as const) {
    const g = geom(2, 32, 14, 14, 32);
    const auto = bits("auto", pass, g);
    assert.equal(auto, bits("winograd", pass, g), `32→32 14×14 ${pass}: auto is Winograd`);
    assert.ok(auto.some((v, j) => v !== bits("direct", pass, g)[j]), `32→32 14×14 ${pass}: and not the direct kernel`);
  }
  const stem = geom(1, 3, 32, 32, 16);
  assert.equal(bits("auto", "forward", stem), bits("direct", "forward", stem), "3→16 stem: direct");
  assert.equal(bits("auto", "backwardWeight", stem), bits("direct", "backwardWeight", stem), "3→16 stem weight gradient: direct");
  const deep = geom(1, 512, 4, 4, 512);
  for (const pass of ["forward", "backwardInput", "backwardWeight"] as const) {
    const auto = bits("auto", pass, deep);
    assert.equal(auto, bits("winograd", pass, deep), `512→512 4×4 ${pass}: auto is Winograd (the dense layout)`);
    assert.ok(auto.some((v, j) => v !== bits("direct", pass, deep)[j]), `512→512 4×4 ${pass}: and not the direct kernel`);
  }
});

test("setConvAlgorithm reaches every CPU backend and rejects a bad name with a ValueError", () => {
  rg.setConvAlgorithm("winograd");
  try {
    assert.is(be.convAlgorithm, "winograd");
    assert.is(rg.getConvAlgorithm(), "winograd");
  } finally {
    rg.setConvAlgorithm("auto");
  }
  assert.is(be.convAlgorithm, "auto");
  assert.throws(() => rg.setConvAlgorithm("fft" as rg.ConvAlgorithm),
    (e: Error) => e instanceof rg.ValueError && /convAlgorithm: "fft" is not one of "direct", "winograd", "auto"/.test(e.message));
});

test.run();
