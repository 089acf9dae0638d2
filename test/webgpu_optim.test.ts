/// <reference types="@webgpu/types" />
/**
 * The optimisers on the WebGPU backend: each fixture case (Adam, AdamW, SGD, LARS, LAMB,
 * scale-amended SGD) takes three steps from the same weights and gradients on the GPU and on
 * the CPU, and every parameter, every state tensor and every per-layer factor agree; so do
 * clipping by norm and by value, AGC and the weight EMA. Composed from ops, the optimisers
 * need no kernels of their own. Skipped where no adapter exists (Node; Deno without a driver).
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { assertClose, formulaInit, loadFixture } from "./helpers.ts";
import { gpuTest, onBackend } from "./support/gpu.ts";
import { type CaseMeta, makeOptimiser, OPTIMISER_CASES, optimiserNet } from "./support/optimisers.ts";

const fx = loadFixture("optimisers.safetensors");

/** GPU against CPU: rtol 1e-4 (norms and convolutions reduce in another order) and a floor at 1e-5 of the RMS. */
async function agree(gpuTensor: rg.Tensor, cpuTensor: rg.Tensor, label: string): Promise<void> {
  assert.is(gpuTensor.backend.name, "webgpu", `${label} lives on the GPU`);
  const e = cpuTensor.dataSync();
  let s = 0;
  for (const v of e) s += v * v;
  assertClose(await gpuTensor.data(), e, label, { rtol: 1e-4, atol: Math.max(1e-9, 1e-5 * Math.sqrt(s / Math.max(1, e.length))) });
}

/** Three fixture steps of `name` on `backend`; returns the model and its optimiser. */
function threeSteps(backend: string, name: string) {
  return onBackend(backend, () => {
    const model = optimiserNet();
    formulaInit(model);
    const opt = makeOptimiser(model, fx.meta(name) as unknown as CaseMeta);
    for (let s = 0; s < 3; s++) {
      rg.tidy(() => {
        opt.zeroGrad();
        model.forward(rg.tensor(fx.get(`x.${s}`).dataSync(), fx.get(`x.${s}`).shape));
      });
      opt.params.forEach((p, i) => (p.grad = rg.tensor(fx.get(`${name}.grad.${s}.${i}`).dataSync(), p.shape)));
      opt.step();
    }
    return { model, opt };
  });
}

for (const name of OPTIMISER_CASES) {
  gpuTest(`webgpu optimisers: ${name} over three steps equals the CPU (parameters, state, per-layer factors)`, async () => {
    const g = threeSteps("webgpu", name), c = threeSteps("cpu", name);
    for (const [i, p] of g.opt.params.entries()) await agree(p, c.opt.params[i], `${name} parameter ${i}`);
    const [gs, cs] = [g.opt.stateDict(), c.opt.stateDict()];
    assert.equal([...gs.keys()], [...cs.keys()]);
    for (const [key, t] of gs) {
      if (key.endsWith(".step")) assert.equal([...t.dataSync()], [...cs.get(key)!.dataSync()], key);
      else await agree(t, cs.get(key)!, `${name} ${key}`);
    }
    const [gr, cr] = [g.opt.layerRates!(), c.opt.layerRates!()];
    assert.is(gr.length, cr.length);
    for (const [k, r] of gr.entries()) {
      assert.is(r.lr, cr[k].lr);
      assert.is(r.factor === null, cr[k].factor === null, `${name}: rate ${k} has a factor on both or neither`);
      if (r.factor) await agree(r.factor, cr[k].factor!, `${name} factor of parameter ${g.opt.params.indexOf(r.param)}`);
    }
  });
}

gpuTest("webgpu optimisers: clipping by norm and value, AGC and the weight EMA equal the CPU", async () => {
  const run = (backend: string) => onBackend(backend, () => {
    const params = [0, 1, 2, 3].map((k) => {
      const p = rg.tensor(fx.get(`clip.weight.${k}`).dataSync(), fx.get(`clip.weight.${k}`).shape).requireGrad();
      p.grad = rg.tensor(fx.get(`clip.grad.${k}`).dataSync(), p.shape);
      return p;
    });
    const totals = [rg.optim.clipGradNorm(params, 3), rg.optim.clipGradNorm(params, 2, Infinity)];
    rg.optim.clipGradValue(params, 0.4);
    rg.optim.adaptiveClipGrad(params, 0.05);
    const model = optimiserNet();
    formulaInit(model);
    const ema = new rg.optim.ModelEMA(model, 0.9);
    const opt = new rg.optim.OptimizerChain(new rg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }), [], ema);
    for (let s = 0; s < 3; s++) {
      rg.tidy(() => {
        opt.zeroGrad();
        const x = fx.get(`x.${s}`);
        rg.crossEntropy(model.forward(rg.tensor(x.dataSync(), x.shape)), Array.from(fx.get(`labels.${s}`).dataSync())).backward();
        opt.step();
      });
    }
    return { grads: params.map((p) => p.grad!), totals, averaged: [...ema.stateDict().values()] };
  });
  const g = run("webgpu"), c = run("cpu");
  for (const [k, t] of g.totals.entries()) await agree(t, c.totals[k], `total norm ${k}`);
  for (const [k, t] of g.grads.entries()) await agree(t, c.grads[k], `clipped gradient ${k}`);
  for (const [k, t] of g.averaged.entries()) await agree(t, c.averaged[k], `EMA tensor ${k}`);
});

test.run();
