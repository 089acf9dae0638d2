/// <reference types="@webgpu/types" />
/**
 * eigh and ZCA whitening on the WebGPU backend against the CPU backend: the float32 Jacobi
 * kernel (gpu/kernels/jacobi.ts) against the CPU's float64 one on stacks of matrices with
 * well-separated and with nearly tied spectra, n from 2 to the kernel's limit of 32 (larger
 * refused by name); eigh's gradient under both backward rules; and a small network with ZCA
 * whitening in BatchNorm's place, its forward, backward, three SGD steps, running statistics
 * and evaluation. Skipped where no adapter exists (Node; Deno without a driver).
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";
import { both, compare, gpuTest, mirrorOnGpu, modelTol, randomValues } from "./support/gpu.ts";
import { withSpectrum } from "./support/spectra.ts";

/** `count` matrices of size n, each with its spectrum from `spectrum(b)`, stacked. */
function stack(n: number, count: number, spectrum: (b: number) => number[], seed: number): Float32Array {
  const out = new Float32Array(count * n * n);
  for (let b = 0; b < count; b++) out.set(withSpectrum(spectrum(b), seed + b), b * n * n);
  return out;
}

/** Well separated: λₖ = 1 + 2(n − k)/n·(1 + b), gaps of 2(1 + b)/n; ‖M‖ = 3 + 2b. */
const separated = (n: number) => (b: number) => Array.from({ length: n }, (_, k) => 1 + (2 * (n - k) / n) * (1 + b));

const EPSILON = 2 ** -23;

/**
 * Float32 cyclic Jacobi is backward stable: measured (bench/eigh_webgpu_error.ts) each
 * eigenvalue is within about n·ε·‖M‖ of the float64 one, so 2n·ε·‖M‖ is allowed; each
 * eigenvector then within 2n·ε·‖M‖/gap (Davis–Kahan).
 */
function tolerances(n: number, count: number): { values: { rtol: number; atol: number }; vectors: { rtol: number; atol: number } } {
  let norm = 0, conditioning = 0;
  for (let b = 0; b < count; b++) {
    const l = separated(n)(b);
    norm = Math.max(norm, l[0]);
    conditioning = Math.max(conditioning, l[0] / (l[0] - l[1]));
  }
  return { values: { rtol: 0, atol: 2 * n * EPSILON * norm }, vectors: { rtol: 0, atol: 2 * n * EPSILON * conditioning } };
}

gpuTest("webgpu: eigh's values and vectors equal the CPU's float64 ones on well-separated spectra, n = 2 to 32, batched", async (g) => {
  for (const n of [2, 3, 4, 8, 17, 32]) {
    const count = n <= 8 ? 5 : 2;
    const data = stack(n, count, separated(n), 10 * n);
    const [mc, mg] = both(data, [count, n, n], g);
    const c = rg.eigh(mc), d = rg.eigh(mg);
    const tol = tolerances(n, count);
    await compare(d.values, c.values, `n = ${n}: eigenvalues`, tol.values);
    await compare(d.vectors, c.vectors, `n = ${n}: eigenvectors (same signs)`, tol.vectors);
  }
});

gpuTest("webgpu: nearly tied spectra: the same values, an orthonormal basis that reconstructs M, the separated vectors equal", async (g) => {
  const n = 6, spectrum = [5, 3 + 1e-4, 3, 2, 1 + 1e-6, 1];
  const data = withSpectrum(spectrum, 77);
  const [mc, mg] = both(data, [n, n], g);
  const c = rg.eigh(mc), d = rg.eigh(mg);
  await compare(d.values, c.values, "eigenvalues", { rtol: 0, atol: 2e-5 });
  const V = await d.vectors.data(), lam = await d.values.data(), Vc = c.vectors.dataSync();
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0, rebuilt = 0;
      for (let r = 0; r < n; r++) dot += V[r * n + i] * V[r * n + j];
      for (let k = 0; k < n; k++) rebuilt += V[i * n + k] * lam[k] * V[j * n + k];
      assert.ok(Math.abs(dot - (i === j ? 1 : 0)) < 1e-5, `vᵢᵀvⱼ at ${i}, ${j}: ${dot}`);
      assert.ok(Math.abs(rebuilt - data[i * n + j]) < 2e-5, `(V diag(λ) Vᵀ)ᵢⱼ at ${i}, ${j}: ${rebuilt} against ${data[i * n + j]}`);
    }
  }
  for (const i of [0, 3]) { // the eigenvalues 5 and 2 stand apart (gap 1, ‖M‖ = 5)
    assertClose(Array.from({ length: n }, (_, r) => V[r * n + i]), Array.from({ length: n }, (_, r) => Vc[r * n + i]), `vector ${i}`, { rtol: 0, atol: 2 * n * EPSILON * 5 });
  }
});

gpuTest("webgpu: eigh refuses matrices above n = 32 with a ShapeError naming the size", (g) => {
  const m = rg.tensor(withSpectrum(Array.from({ length: 33 }, (_, k) => 33 - k), 5), [33, 33], g);
  assert.throws(() => rg.eigh(m), (e: Error) => e instanceof rg.ShapeError && /n = 33 exceed.*n ≤ 32/.test(e.message));
});

for (const backward of ["power-iteration", "analytic"] as const) {
  gpuTest(`webgpu: eigh's gradient (${backward} backward) through values and vectors equals the CPU's, batched`, async (g) => {
    const n = 5, count = 3;
    const data = stack(n, count, (b) => (b === 2 ? [4, 3.5, 3.45, 1, 0.5] : separated(n)(b)), 300);
    const [mc, mg] = both(data, [count, n, n], g, true);
    const [gvc, gvg] = both(randomValues(count * n * n, 301), [count, n, n], g);
    const [glc, glg] = both(randomValues(count * n, 302), [count, n], g);
    const loss = (m: rg.Tensor, gv: rg.Tensor, gl: rg.Tensor) => {
      const { values, vectors } = rg.eigh(m, { backward });
      return rg.add(rg.sum(rg.mul(vectors, gv)), rg.sum(rg.mul(values, gl)));
    };
    loss(mc, gvc, glc).backward();
    loss(mg, gvg, glg).backward();
    const expected = mc.grad!.dataSync();
    // The closest pair (0.05 apart) amplifies the float32 vectors' error (~ n·ε·‖M‖/gap, 1e-5) in
    // the gradient; measured 2e-6 (power iteration) and 6e-6 (analytic) of the largest entry.
    await compare(mg.grad!, mc.grad!, `dL/dM (${backward})`, { rtol: 1e-4, atol: 1e-4 * Math.max(...expected.map(Math.abs)) });
  });
}

gpuTest("webgpu: the power-iteration gradient of a matrix that is not positive definite is NaN (the CPU refuses it)", async (g) => {
  const m = rg.tensor([1, 0, 0, -1], [2, 2], g).requireGrad();
  const [grad] = rg.grad(rg.sum(rg.mul(rg.eigh(m).vectors, rg.tensor([1, 2, 3, 4], [2, 2], g))), [m]);
  assert.ok((await grad!.data()).every(Number.isNaN));
});

gpuTest("webgpu: a network with ZCA whitening: forward, backward, three SGD steps, running statistics and evaluation equal the CPU's", async (g) => {
  for (const backward of ["power-iteration", "analytic"] as const) {
    rg.manualSeed(3);
    const make = () => new rg.nn.Sequential(
      new rg.nn.Conv2d(3, 8, 3, { padding: 1 }), new rg.nn.ZCAWhitening2d(8, { groupSize: 4, eps: 1e-3, backward }),
      new rg.nn.ReLU(), new rg.nn.Flatten(), new rg.nn.Linear(8 * 6 * 6, 4),
    );
    const cpuModel = make();
    const gpuModel = mirrorOnGpu(make, cpuModel);
    const [xc, xg] = both(randomValues(4 * 3 * 36, 311, -2, 2), [4, 3, 6, 6], g);
    const labels = [0, 3, 1, 2];
    const options = { lr: 0.05, momentum: 0.9 };
    const optC = new rg.optim.SGD(cpuModel.parameters(), options), optG = new rg.optim.SGD(gpuModel.parameters(), options);
    const buffers: number[] = [];
    for (let step = 0; step < 3; step++) {
      const yc = cpuModel.forward(xc), yg = gpuModel.forward(xg);
      await compare(yg, yc, `${backward} step ${step}: logits`, modelTol(yc.dataSync()));
      const lc = rg.crossEntropy(yc, labels), lg = rg.crossEntropy(yg, labels);
      lc.backward();
      lg.backward();
      const gpuParams = new Map(gpuModel.namedParameters());
      for (const [name, p] of cpuModel.namedParameters()) {
        const expected = p.grad!.dataSync();
        assertClose(await gpuParams.get(name)!.grad!.data(), expected, `${backward} step ${step}: grad ${name}`, modelTol(expected));
      }
      optC.step();
      optG.step();
      optC.zeroGrad();
      optG.zeroGrad();
      for (const t of [yc, yg, lc, lg]) t.dispose();
      buffers.push(g.memory().buffers);
    }
    assert.equal(buffers.slice(1), [buffers[0], buffers[0]], `${backward}: GPU buffers after each step (none leaked)`);
    const gpuState = gpuModel.stateDict();
    for (const [name, t] of cpuModel.stateDict()) {
      const expected = t.dataSync();
      assertClose(await gpuState.get(name)!.data(), expected, `${backward}: ${name} after three steps`, modelTol(expected));
    }
    cpuModel.train(false);
    gpuModel.train(false);
    const ec = cpuModel.forward(xc), eg = gpuModel.forward(xg);
    await compare(eg, ec, `${backward}: evaluation with the running statistics`, modelTol(ec.dataSync()));
  }
});

test.run();
