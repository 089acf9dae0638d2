/**
 * The Winograd F(2×2, 3×3) kernels of the CPU backend (assembly/winograd.ts) against a float64
 * direct convolution: the forward pass and the input gradient on many shapes (odd planes,
 * channel counts that are not multiples of 4 or 8, batch 1, a 1×1 plane, more than KC = 256
 * input channels), each within a bound scaled to its terms (|err| ≤ 8·2⁻²⁴·Σ|x·w|, the same
 * form of bound as the direct kernels' and several times under what an F(2×2, 3×3) kernel
 * with a broken transform gives); the adjoint identity ⟨conv(x), dy⟩ = ⟨x, conv_inputgrad(dy)⟩
 * (a gradient check of the pair); the switch (convAlgorithm, setConvAlgorithm): the direct
 * path stays the default, what Winograd cannot do (stride 2, groups, 5×5, no padding) falls
 * back to it bit for bit, and "auto" follows its table.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import type { CpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry, DeviceBuffer } from "../src/backend/backend.ts";
import { conv3x3Errors, conv3x3Reference, flipTranspose, lcgValues as rand } from "./support/conv3x3.ts";

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

type Pass = "forward" | "backwardInput";

/** One pass of the backend under `algorithm`: forward y = conv(a, w), or dx = conv_inputgrad(a = dy, w). */
function run(algorithm: rg.ConvAlgorithm, pass: Pass, a: Float32Array, w: Float32Array, g: ConvGeometry): Float32Array {
  const before = be.convAlgorithm;
  be.convAlgorithm = algorithm;
  const outLen = pass === "forward" ? g.N * g.O * g.OH * g.OW : g.N * g.C * g.H * g.W;
  const ab = upload(a), wb = upload(w), out = be.alloc(outLen);
  try {
    if (pass === "forward") be.conv2dForward(ab, wb, out, g);
    else be.conv2dBackwardInput(ab, wb, out, g);
    return be.readSync(out);
  } finally {
    [ab, wb, out].forEach((b) => be.free(b));
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
  [1, 300, 5, 6, 12], // C > KC: the forward products sum two KC blocks
  [2, 12, 5, 6, 270], // O > KC: the input gradient's products sum two KC blocks
  [2, 32, 32, 32, 32], // a ResNet-20 stage-2-sized plane, several tile-row blocks
  [1, 64, 8, 8, 70],
];

for (const pass of ["forward", "backwardInput"] as const) {
  test(`winograd ${pass}: within ${BOUND}·ε·Σ|x·w| of float64 on ${SHAPES.length} shapes, and not the direct kernel's bits`, () => {
    let differs = 0;
    for (const [i, [N, C, H, W, O]] of SHAPES.entries()) {
      const g = geom(N, C, H, W, O);
      const w = rand(O * C * 9, 100 + i);
      const a = rand(pass === "forward" ? N * C * H * W : N * O * H * W, 200 + i);
      // the input gradient is the forward conv of dy with the flipped, transposed filters
      const ref = pass === "forward" ? conv3x3Reference(a, w, N, C, O, H, W) : conv3x3Reference(a, flipTranspose(w, C, O), N, O, C, H, W);
      const wino = run("winograd", pass, a, w, g);
      const direct = run("direct", pass, a, w, g);
      const worst = worstError(wino, ref);
      assert.ok(worst <= BOUND, `${pass} ${N}×${C}→${O} ${H}×${W}: error ${worst.toFixed(2)}·ε·Σ|x·w| > ${BOUND}`);
      assert.ok(worstError(direct, ref) <= BOUND, "the direct kernel against the same reference");
      if (wino.some((v, j) => v !== direct[j])) differs++;
    }
    // Rounding differs, so (unless Winograd did not run) some outputs differ from the direct path's.
    assert.ok(differs >= SHAPES.length - 2, `only ${differs} of ${SHAPES.length} shapes differ from the direct kernel: did Winograd run?`);
  });
}

test("winograd: the adjoint identity ⟨conv(x), dy⟩ = ⟨x, conv_inputgrad(dy)⟩ (a gradient check of the pair)", () => {
  for (const [i, [N, C, H, W, O]] of [[2, 5, 7, 9, 6], [1, 40, 12, 12, 24]].entries()) {
    const g = geom(N, C, H, W, O);
    const x = rand(N * C * H * W, 300 + i), w = rand(O * C * 9, 310 + i), dy = rand(N * O * H * W, 320 + i);
    const y = run("winograd", "forward", x, w, g), dx = run("winograd", "backwardInput", dy, w, g);
    let lhs = 0, rhs = 0, mag = 0;
    for (let j = 0; j < y.length; j++) {
      lhs += y[j] * dy[j];
      mag += Math.abs(y[j] * dy[j]);
    }
    for (let j = 0; j < x.length; j++) rhs += x[j] * dx[j];
    assert.ok(Math.abs(lhs - rhs) <= 1e-5 * mag, `case ${i}: ⟨y, dy⟩ = ${lhs}, ⟨x, dx⟩ = ${rhs}`);
  }
});

test("convAlgorithm: direct by default; Winograd falls back to the direct kernels where it does not apply", () => {
  assert.is(rg.getConvAlgorithm(), "direct");
  assert.is(be.convAlgorithm, "direct");
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

test("auto: Winograd for a shape in its table (32→32 14×14), the direct kernels for one that is not (16→16 28×28 input gradient, 3→16)", () => {
  const bits = (algorithm: rg.ConvAlgorithm, pass: Pass, g: ConvGeometry) => {
    const w = rand(g.O * g.C * 9, 9);
    return run(algorithm, pass, rand(pass === "forward" ? g.N * g.C * g.H * g.W : g.N * g.O * g.H * g.W, 10), w, g);
  };
  for (const pass of ["forward", "backwardInput"] as const) {
    const g = geom(2, 32, 14, 14, 32);
    const auto = bits("auto", pass, g);
    assert.equal(auto, bits("winograd", pass, g), `32→32 14×14 ${pass}: auto is Winograd`);
    assert.ok(auto.some((v, j) => v !== bits("direct", pass, g)[j]), `32→32 14×14 ${pass}: and not the direct kernel`);
  }
  const g16 = geom(1, 16, 28, 28, 16);
  assert.equal(bits("auto", "backwardInput", g16), bits("direct", "backwardInput", g16), "16→16 28×28 input gradient: direct");
  const stem = geom(1, 3, 32, 32, 16);
  assert.equal(bits("auto", "forward", stem), bits("direct", "forward", stem), "3→16 stem: direct");
});

test("setConvAlgorithm reaches every CPU backend and rejects a bad name with a ValueError", () => {
  rg.setConvAlgorithm("winograd");
  try {
    assert.is(be.convAlgorithm, "winograd");
    assert.is(rg.getConvAlgorithm(), "winograd");
  } finally {
    rg.setConvAlgorithm("direct");
  }
  assert.is(be.convAlgorithm, "direct");
  assert.throws(() => rg.setConvAlgorithm("fft" as rg.ConvAlgorithm),
    (e: Error) => e instanceof rg.ValueError && /convAlgorithm: "fft" is not one of "direct", "winograd", "auto"/.test(e.message));
});

test.run();
