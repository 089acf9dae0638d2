/**
 * The Bayesian (Kalman) initialiser (nn/bayes_init.ts): its weights against a float64
 * reimplementation of the stated update written another way (the information form: posterior
 * precision 1/σ² + 1ᵀR⁻¹1, mean 1ᵀR⁻¹z over that, R inverted by Gauss–Jordan), the spread of
 * the weights it produces against σ·√M/(M + 1), the model-wide pass, bad input, and
 * `train --bayes-init` (run once, from the Node pass). On WebGPU (skipped where no adapter
 * exists): a model built and initialised there, a CPU-initialised model moved there, and
 * `train --backend webgpu --bayes-init` all have the CPU's weights.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";
import { ELEMENTWISE, gpuTest, onBackend } from "./support/gpu.ts";

/** The inverse of a symmetric positive definite [m, m] matrix, by Gauss–Jordan elimination. */
function inverse(a: Float64Array, m: number): Float64Array {
  const w = new Float64Array(m * 2 * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) w[i * 2 * m + j] = a[i * m + j];
    w[i * 2 * m + m + i] = 1;
  }
  for (let c = 0; c < m; c++) {
    const pivot = w[c * 2 * m + c];
    for (let j = 0; j < 2 * m; j++) w[c * 2 * m + j] /= pivot;
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = w[r * 2 * m + c];
      for (let j = 0; j < 2 * m; j++) w[r * 2 * m + j] -= f * w[c * 2 * m + j];
    }
  }
  const out = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) out[i * m + j] = w[i * 2 * m + m + j];
  return out;
}

/** The posterior mean of N(0, σ²) given draws z (rows) with error covariance R, in information form. */
function referenceFusion(draws: Float32Array[], variance: number): Float64Array {
  const m = draws.length, n = draws[0].length;
  const mean = draws.map((z) => z.reduce((a, b) => a + b, 0) / n);
  const r = new Float64Array(m * m);
  for (let k = 0; k < m; k++) {
    for (let l = 0; l < m; l++) {
      let c = 0;
      for (let e = 0; e < n; e++) c += (draws[k][e] - mean[k]) * (draws[l][e] - mean[l]);
      r[k * m + l] = c / n;
    }
  }
  const rInv = inverse(r, m);
  const weights = new Float64Array(m); // 1ᵀR⁻¹
  for (let k = 0; k < m; k++) for (let l = 0; l < m; l++) weights[l] += rInv[k * m + l];
  const precision = 1 / variance + weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(n);
  for (let e = 0; e < n; e++) {
    let s = 0;
    for (let k = 0; k < m; k++) s += weights[k] * draws[k][e];
    out[e] = s / precision;
  }
  return out;
}

function std(x: ArrayLike<number>): number {
  let s = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) {
    s += x[i];
    s2 += x[i] * x[i];
  }
  return Math.sqrt(s2 / x.length - (s / x.length) ** 2);
}

for (const law of ["uniform", "kaiming"] as const) {
  test(`bayesian_ (${law} law) equals the information-form Bayes update of the same seeded draws`, () => {
    const shape = [12, 5, 3, 3], m = 6;
    const fanIn = 5 * 9, fanOut = 12 * 9, bound = 1 / Math.sqrt(fanIn);
    const variance = law === "uniform" ? bound * bound / 3 : 2 / fanOut;
    const draws = rg.withRandomState(7, () => Array.from({ length: m }, () =>
      (law === "uniform" ? rg.rand(shape, { low: -bound, high: bound }) : rg.randn(shape, { std: Math.sqrt(variance) })).dataSync().slice()));
    const fused = rg.withRandomState(7, () => rg.nn.bayesian_(rg.zeros(shape), { draws: m, law }).dataSync());
    assertClose(fused, referenceFusion(draws, variance), `bayesian_ ${law}`, { rtol: 1e-5, atol: 1e-8 });
  });
}

test("bayesian_ shrinks the spread to about σ·√M/(M + 1), centred on 0", () => {
  const shape = [256, 784], sigma = 1 / Math.sqrt(784) / Math.sqrt(3);
  for (const m of [1, 4, 10]) {
    const w = rg.withRandomState(m, () => rg.nn.bayesian_(rg.zeros(shape), { draws: m }).dataSync());
    const expected = sigma * Math.sqrt(m) / (m + 1);
    assert.ok(Math.abs(std(w) / expected - 1) < 0.02, `M = ${m}: std ${std(w)}, expected ≈ ${expected}`);
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    assert.ok(Math.abs(mean) < 4 * expected / Math.sqrt(w.length), `M = ${m}: mean ${mean}`);
  }
});

test("bayesianInit replaces every Linear and Conv2d weight, leaves biases, and is seeded", () => {
  const build = () => {
    rg.manualSeed(3);
    return rg.models.createModel("vgg11-bn", { inChannels: 1, numClasses: 10, imageSize: 16, widthMultiplier: 0.125 });
  };
  const plain = build().stateDict();
  const fused = build();
  rg.nn.bayesianInit(fused, { draws: 4 });
  const again = build();
  rg.nn.bayesianInit(again, { draws: 4 });
  let weights = 0;
  for (const [name, t] of fused.stateDict()) {
    const before = plain.get(name)!.dataSync(), after = t.dataSync();
    const isWeight = name.endsWith(".weight") && t.rank >= 2;
    if (isWeight) {
      weights++;
      const fanIn = t.size / t.shape[0], expected = Math.sqrt(4) / 5 / Math.sqrt(3 * fanIn);
      assert.ok(Math.abs(std(after) / expected - 1) < 0.3, `${name}: std ${std(after)}, expected ≈ ${expected} (the uniform law fused)`);
    } else {
      assert.equal(after, before, `${name} unchanged`);
    }
    assert.equal(after, again.stateDict().get(name)!.dataSync(), `${name}: same seed, same weights`);
  }
  assert.ok(weights >= 9, `${weights} weights fused`);
});

test("bayesian_ refuses bad options and tensors by name", () => {
  assert.throws(() => rg.nn.bayesian_(rg.zeros([4, 4]), { draws: 0 }), (e: Error) => e instanceof rg.ValueError && /draws/.test(e.message));
  assert.throws(() => rg.nn.bayesian_(rg.zeros([4, 4]), { law: "normal" as "uniform" }), (e: Error) => e instanceof rg.ValueError && /law/.test(e.message));
  assert.throws(() => rg.nn.bayesian_(rg.zeros([4])), (e: Error) => e instanceof rg.ValueError && /rank/.test(e.message));
});

const cliTest = "Deno" in globalThis ? test.skip : test;

cliTest("train --bayes-init M starts from fused weights, records M in config.json, and refuses --init beside it", () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-bayes-"));
  try {
    const train = (...argv: string[]) => spawnSync("node", ["dist/cli.mjs", "train", "--model", "mlp", "--dataset", "synthetic", "--threads", "1", ...argv], { encoding: "utf8" });
    // One step at a negligible rate: the saved weights are the initial ones.
    const r = train("--steps", "1", "--lr", "1e-12", "--bayes-init", "4", "--out", join(dir, "run"));
    assert.is(r.status, 0, r.stderr);
    assert.is(JSON.parse(readFileSync(join(dir, "run", "config.json"), "utf8")).bayesInit, 4);
    const weights = rg.io.readSafetensors(new Uint8Array(readFileSync(join(dir, "run", "model.safetensors"))));
    const first = weights.get("layers.0.weight")!;
    const expected = Math.sqrt(4) / 5 / Math.sqrt(3 * first.shape[1]);
    assert.ok(Math.abs(std(first.dataSync()) / expected - 1) < 0.05, `layers.0.weight std ${std(first.dataSync())}, expected ≈ ${expected}`);
    const both = train("--bayes-init", "4", "--init", join(dir, "run", "model.safetensors"), "--out", join(dir, "both"));
    assert.is(both.status, 2, both.stderr);
    assert.match(both.stderr, /--bayes-init and --init both set the initial weights/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** VGG-11 with BatchNorm at width 1/8, seeded, Bayesian-initialised with M = 4 on `backend`. */
function fusedVgg(backend: string) {
  return onBackend(backend, () => {
    rg.manualSeed(3);
    const model = rg.models.createModel("vgg11-bn", { inChannels: 1, numClasses: 10, imageSize: 16, widthMultiplier: 0.125 });
    rg.nn.bayesianInit(model, { draws: 4 });
    return { model, stream: rg.getRandomState() };
  });
}

const isFused = (name: string, t: rg.Tensor) => name.endsWith(".weight") && t.rank >= 2;
/** Equal values (a tolerance of 0: a mismatch names its first worst element instead of diffing whole arrays). */
const BITWISE = { rtol: 0, atol: 0 };

gpuTest("webgpu: bayesianInit of a model built on the GPU gives the CPU's fused weights bit for bit and leaves the stream where the CPU's does; a CPU-initialised model moved by loadStateDict is the CPU's", async () => {
  const onGpu = fusedVgg("webgpu"), onCpu = fusedVgg("cpu");
  assert.equal(onGpu.stream, onCpu.stream, "the random stream after initialisation");
  const expected = onCpu.model.stateDict();
  let fused = 0;
  for (const [name, t] of onGpu.model.stateDict()) {
    assert.is(t.backend.name, "webgpu", `${name} lives on the GPU`);
    const values = await t.data();
    // The fused weights are computed on the host either way; the rest (biases drawn by the GPU's kernel, BatchNorm's constants) to float32.
    if (isFused(name, t)) {
      fused++;
      assertClose(values, expected.get(name)!, `${name}: fused weights`, BITWISE);
    } else assertClose(values, expected.get(name)!, name, ELEMENTWISE);
  }
  assert.ok(fused >= 9, `${fused} fused weights compared`);
  const moved = onBackend("webgpu", () => rg.models.createModel("vgg11-bn", { inChannels: 1, numClasses: 10, imageSize: 16, widthMultiplier: 0.125 }));
  moved.loadStateDict(onCpu.model.stateDict());
  for (const [name, t] of moved.stateDict()) {
    assert.is(t.backend.name, "webgpu", `moved ${name} lives on the GPU`);
    assertClose(await t.data(), expected.get(name)!, `moved ${name}`, BITWISE);
  }
});

gpuTest("webgpu: train --backend webgpu --bayes-init 4 (Deno CLI) starts from the CPU run's fused weights", () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-bayes-gpu-"));
  try {
    const saved = (backend: string) => {
      const out = join(dir, backend);
      // One step at a negligible rate: the saved weights are the initial ones.
      const r = spawnSync(process.execPath, ["run", "-A", "--quiet", "cli/main.ts", "train", "--model", "mlp", "--dataset", "synthetic",
        "--steps", "1", "--lr", "1e-12", "--bayes-init", "4", "--backend", backend, "--threads", "1", "--out", out], { encoding: "utf8" });
      assert.is(r.status, 0, r.stderr);
      return rg.io.readSafetensors(new Uint8Array(readFileSync(join(out, "model.safetensors"))));
    };
    const [gpuRun, cpuRun] = [saved("webgpu"), saved("cpu")];
    assert.equal([...gpuRun.keys()], [...cpuRun.keys()]);
    for (const [name, t] of gpuRun) {
      if (isFused(name, t)) assertClose(t, cpuRun.get(name)!, `${name}: fused weights`, BITWISE);
      else assertClose(t, cpuRun.get(name)!, name, ELEMENTWISE);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
