/**
 * ZCA whitening (ops/zca.ts, nn/zca.ts): the forward against a float64 reference that whitens
 * with (Σ + εI)^-1/2 from the Newton–Schulz iteration (no eigendecomposition); the backward
 * against central finite differences under both eigh rules on well-separated spectra; at
 * exactly equal eigenvalues the analytic backward is not finite while the power-iteration one
 * is; the layer's running statistics and its evaluation with them; ResNet-20 with ZCA in
 * every BatchNorm's place (finite gradients, frozenStats, refusals) and `train --norm zca`;
 * bad input by name.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { assertClose, gradcheck } from "./helpers.ts";

/** (A)^-1/2 of a symmetric positive definite [g, g] matrix by the coupled Newton–Schulz iteration, float64. */
function inverseSqrt(a: Float64Array, g: number): Float64Array {
  const mul = (x: Float64Array, y: Float64Array) => {
    const out = new Float64Array(g * g);
    for (let i = 0; i < g; i++) for (let k = 0; k < g; k++) for (let j = 0; j < g; j++) out[i * g + j] += x[i * g + k] * y[k * g + j];
    return out;
  };
  let norm = 0;
  for (const v of a) norm += v * v;
  norm = Math.sqrt(norm);
  let y = a.map((v) => v / norm);
  let z = new Float64Array(g * g);
  for (let i = 0; i < g; i++) z[i * g + i] = 1;
  for (let it = 0; it < 60; it++) {
    const t = mul(z, y).map((v, i) => (i % (g + 1) === 0 ? 3 : 0) / 2 - v / 2);
    y = mul(y, t);
    z = mul(t, z);
  }
  return z.map((v) => v / Math.sqrt(norm));
}

/** W(x − μ) per group of g channels, with the batch's statistics or given ones, in float64. */
function referenceWhiten(x: Float32Array, shape: number[], g: number, eps: number, given?: { mean: ArrayLike<number>; cov: ArrayLike<number> }) {
  const [n, c, h, w] = shape, hw = h * w, m = n * hw;
  const out = new Float64Array(x.length);
  const at = (b: number, ch: number, p: number) => (b * c + ch) * hw + p;
  const means: number[] = [], covs: number[] = [];
  for (let first = 0; first < c; first += g) {
    const mu = Array.from({ length: g }, (_, r) => {
      if (given) return given.mean[first + r];
      let s = 0;
      for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) s += x[at(b, first + r, p)];
      return s / m;
    });
    const sigma = new Float64Array(g * g);
    for (let i = 0; i < g; i++) {
      for (let j = 0; j < g; j++) {
        let s = 0;
        if (given) s = given.cov[first * g + i * g + j];
        else for (let b = 0; b < n; b++) for (let p = 0; p < hw; p++) s += (x[at(b, first + i, p)] - mu[i]) * (x[at(b, first + j, p)] - mu[j]) / m;
        sigma[i * g + j] = s + (i === j ? eps : 0);
        covs.push(s);
      }
    }
    means.push(...mu);
    const wz = inverseSqrt(sigma, g);
    for (let b = 0; b < n; b++) {
      for (let p = 0; p < hw; p++) {
        for (let i = 0; i < g; i++) {
          let s = 0;
          for (let j = 0; j < g; j++) s += wz[i * g + j] * (x[at(b, first + j, p)] - mu[j]);
          out[at(b, first + i, p)] = s;
        }
      }
    }
  }
  return { out, means, covs };
}

/** [N, C, H, W] with correlated channels of distinct spreads, so each group's eigenvalues are well apart. */
function correlated(shape: number[], g: number, seed: number): rg.Tensor {
  const [n, c, h, w] = shape;
  const z = rg.withRandomState(seed, () => rg.randn(shape).dataSync());
  const x = new Float32Array(z.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const first = ch - (ch % g);
      for (let p = 0; p < h * w; p++) {
        // channel = its own noise × 3^k plus half of the group's first channel, plus an offset
        const i = (b * c + ch) * h * w + p;
        x[i] = z[i] * 3 ** (ch % g) + (ch === first ? 0 : 0.5 * z[(b * c + first) * h * w + p]) + ch;
      }
    }
  }
  return rg.tensor(x, shape);
}

const options = (backward: "power-iteration" | "analytic") => ({ groupSize: 4, eps: 1e-3, backward, iterations: 19 });

test("zcaWhiten's forward equals W(x − μ) with W = (Σ + εI)^-1/2 from Newton–Schulz, group by group", () => {
  const shape = [3, 8, 4, 5], x = correlated(shape, 4, 1);
  const y = rg.zcaWhiten(x, options("power-iteration"));
  const { out } = referenceWhiten(x.dataSync(), shape, 4, 1e-3);
  assertClose(y, out, "zcaWhiten", { rtol: 1e-4, atol: 1e-5 });
});

for (const backward of ["analytic", "power-iteration"] as const) {
  test(`zcaWhiten's ${backward} backward equals central finite differences on well-separated spectra`, () => {
    const x = correlated([2, 4, 3, 3], 4, 2);
    gradcheck(`zcaWhiten ${backward}`, ([t]) => rg.zcaWhiten(t, { ...options(backward), groupSize: 4 }), [x], { h: 1e-2, rtol: 2e-2, atol: 2e-3 });
  });
}

test("at exactly equal eigenvalues the analytic backward is not finite, the power-iteration one is", () => {
  // Rows of ±1 Walsh patterns (zero mean, orthogonal): Σ = diag(1, 1, 4, 9) exactly.
  const walsh = [[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1], [1, 1, 1, 1, -1, -1, -1, -1], [1, -1, -1, 1, 1, -1, -1, 1]];
  const scale = [1, 1, 2, 3];
  // [N = 2, C = 4, H = 2, W = 2]: sample k = b·4 + p.
  const data = new Float32Array(32);
  for (let b = 0; b < 2; b++) for (let ch = 0; ch < 4; ch++) for (let p = 0; p < 4; p++) data[(b * 4 + ch) * 4 + p] = scale[ch] * walsh[ch][b * 4 + p];
  const upstream = rg.withRandomState(5, () => rg.randn([2, 4, 2, 2]));
  const gradient = (backward: "power-iteration" | "analytic") => {
    const x = rg.tensor(data, [2, 4, 2, 2]).requireGrad();
    rg.zcaWhiten(x, { groupSize: 4, eps: 1e-5, backward, iterations: 19 }).backward(upstream);
    return x.grad!.dataSync();
  };
  const bounded = gradient("power-iteration");
  assert.ok(bounded.every(Number.isFinite), "power-iteration gradient finite");
  assert.ok(Math.max(...bounded.map(Math.abs)) < 100, `power-iteration gradient bounded: ${Math.max(...bounded.map(Math.abs))}`);
  assert.not.ok(gradient("analytic").every(Number.isFinite), "analytic gradient not finite at a tie");
});

test("ZCAWhitening2d: γ·y + β in training, running mean and unbiased covariance, evaluation with them", () => {
  const shape = [4, 8, 3, 3], x = correlated(shape, 4, 3);
  const layer = new rg.nn.ZCAWhitening2d(8, { groupSize: 4, eps: 1e-3 });
  layer.weight.copy_(rg.tensor(Float32Array.from({ length: 8 }, (_, i) => 1 + i / 4), [8]));
  layer.bias.copy_(rg.tensor(Float32Array.from({ length: 8 }, (_, i) => i / 8 - 0.5), [8]));
  const y = layer.forward(x).dataSync();
  const { out, means, covs } = referenceWhiten(x.dataSync(), shape, 4, 1e-3);
  assertClose(y, out.map((v, i) => v * (1 + Math.floor(i / 9) % 8 / 4) + (Math.floor(i / 9) % 8) / 8 - 0.5), "training output", { rtol: 1e-4, atol: 1e-5 });
  const m = 4 * 9;
  assertClose(layer.runningMean, means.map((v) => 0.1 * v), "running mean", { rtol: 1e-5, atol: 1e-6 });
  const identity = covs.map((_, i) => (i % 16) % 5 === 0 ? 1 : 0);
  assertClose(layer.runningCov, covs.map((v, i) => 0.9 * identity[i] + 0.1 * v * m / (m - 1)), "running covariance", { rtol: 1e-5, atol: 1e-6 });
  layer.train(false);
  const evaluated = layer.forward(x).dataSync();
  const reference = referenceWhiten(x.dataSync(), shape, 4, 1e-3, { mean: layer.runningMean.dataSync(), cov: layer.runningCov.dataSync() }).out;
  assertClose(evaluated, reference.map((v, i) => v * (1 + Math.floor(i / 9) % 8 / 4) + (Math.floor(i / 9) % 8) / 8 - 0.5), "evaluation output", { rtol: 1e-4, atol: 1e-5 });
  assertClose(layer.runningMean, means.map((v) => 0.1 * v), "evaluation leaves the running mean", { rtol: 1e-5, atol: 1e-6 });
});

test("zcaWhiten and ZCAWhitening2d refuse bad input by name", () => {
  const refuses = (f: () => unknown, pattern: RegExp) => assert.throws(f, (e: Error) => e instanceof rg.RetrogradError && pattern.test(e.message));
  refuses(() => rg.zcaWhiten(rg.zeros([2, 6, 2, 2]), options("analytic")), /groupSize must be a positive divisor of the 6 channels, got 4/);
  refuses(() => rg.zcaWhiten(rg.zeros([2, 4, 4]), options("analytic")), /expected input \[N, C, H, W\], got \[2, 4, 4\]/);
  refuses(() => rg.zcaWhiten(rg.zeros([2, 4, 2, 2]), { ...options("analytic"), eps: 0 }), /eps must be > 0/);
  refuses(() => new rg.nn.ZCAWhitening2d(6, { groupSize: 4 }), /groupSize 4 does not divide the 6 channels/);
  refuses(() => new rg.nn.ZCAWhitening2d(4, { backward: "svd" as "analytic" }), /backward must be/);
});

test("ResNet-20 with norm zca: ZCA whitening in every BatchNorm's place, finite gradients, frozen statistics", () => {
  rg.manualSeed(0);
  const model = rg.models.createModel("resnet20", { inChannels: 1, numClasses: 10, imageSize: 8, widthMultiplier: 0.25, zca: { backward: "power-iteration" } });
  const modules = [...model.namedModules()].map(([, m]) => m);
  assert.is(modules.filter((m) => m instanceof rg.nn.BatchNorm2d).length, 0, "no BatchNorm left");
  assert.is(modules.filter((m) => m instanceof rg.nn.ZCAWhitening2d).length, 21, "19 branch and stem norms + 2 downsampling norms");
  const x = rg.withRandomState(1, () => rg.randn([8, 1, 8, 8]));
  rg.crossEntropy(model.forward(x), [0, 1, 2, 3, 4, 5, 6, 7]).backward();
  for (const [name, p] of model.namedParameters()) {
    const g = p.grad!.dataSync();
    assert.ok(g.every(Number.isFinite) && g.some((v) => v !== 0), `${name}: finite, nonzero gradient`);
  }
  const buffers = () => [...model.stateDict()].filter(([k]) => k.includes("running")).map(([k, t]) => [k, [...t.dataSync()]]);
  const before = buffers();
  rg.nn.frozenStats(model, () => rg.noGrad(() => model.forward(x)));
  assert.equal(buffers(), before, "frozenStats leaves the running mean and covariance");
  rg.noGrad(() => model.forward(x));
  assert.not.equal(buffers(), before, "outside the scope they move");
  for (const name of ["vgg11", "resnet20-nonorm", "mlp"]) {
    assert.throws(() => rg.models.createModel(name, { inChannels: 1, numClasses: 10, imageSize: 8, zca: {} }),
      (e: Error) => e instanceof rg.ValueError && e.message.includes(`${name} is not a ResNet with BatchNorm`));
  }
});

const cliTest = "Deno" in globalThis ? test.skip : test;

cliTest("train --norm zca trains a ResNet with ZCA whitening and records it; a model without BatchNorm refuses it", () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-zca-"));
  try {
    const train = (...argv: string[]) => spawnSync("node", ["dist/cli.mjs", "train", "--dataset", "synthetic", "--threads", "1", ...argv], { encoding: "utf8" });
    const r = train("--model", "resnet20", "--width", "0.25", "--steps", "2", "--norm", "zca", "--zca-backward", "analytic", "--out", join(dir, "run"));
    assert.is(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(dir, "run", "config.json"), "utf8")).zca, { backward: "analytic" });
    const saved = rg.io.readSafetensors(new Uint8Array(readFileSync(join(dir, "run", "model.safetensors"))));
    assert.equal([...saved.get("bn1.running_cov")!.shape], [1, 4, 4]);
    const refused = train("--model", "mlp", "--norm", "zca", "--out", join(dir, "mlp"));
    assert.is(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /--norm zca: ZCA whitening replaces a ResNet's BatchNorms; mlp is not a ResNet with BatchNorm/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
