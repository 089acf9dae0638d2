/// <reference types="@webgpu/types" />
/**
 * The open core on the WebGPU backend: rg.grad equals backward() bitwise there too, a
 * frozen-statistics forward moves no buffer, customGrad and functionalCall run, and the SGD
 * definition in tensor ops agrees with the fused one-dispatch step. Skipped where no adapter
 * exists (Node; Deno without a driver).
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { compare, cpu, ELEMENTWISE, gpuTest, modelTol, onBackend } from "./support/gpu.ts";

async function bits(t: rg.Tensor): Promise<number[]> {
  return [...new Uint32Array((await t.data()).buffer)];
}

async function buffers(model: rg.nn.Module): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [name, t] of model.namedBuffers()) out.set(name, await bits(t));
  return out;
}

gpuTest("webgpu core: rg.grad of ResNet-20's loss equals backward()'s .grad bitwise; a frozen-statistics forward moves no buffer", async () => {
  rg.manualSeed(21);
  const { model, x } = onBackend("webgpu", () => ({
    model: rg.models.resnet20({ inChannels: 1, numClasses: 4 }), x: rg.randn([3, 1, 8, 8]),
  }));
  const params = model.parameters();
  const loss = rg.crossEntropy(model.forward(x), [0, 1, 2]);
  const grads = rg.grad(loss, params, { retainGraph: true });
  loss.backward();
  for (const [i, p] of params.entries()) assert.equal(await bits(grads[i]!), await bits(p.grad!), `parameter ${i}`);
  const before = await buffers(model);
  rg.tidy(() => rg.nn.frozenStats(model, () => rg.noGrad(() => model.forward(x))));
  assert.equal(await buffers(model), before, "every BatchNorm buffer bitwise unchanged");
  model.dispose();
});

gpuTest("webgpu core: customGrad and functionalCall agree with the CPU", async () => {
  const tripled = rg.customGrad({ forward: (x) => ({ output: rg.scale(x, 2) }), backward: (dy) => [rg.scale(dy, 3)] });
  const run = (backend: string) => onBackend(backend, () => {
    rg.manualSeed(22);
    const model = new rg.nn.Sequential(new rg.nn.Linear(5, 4), new rg.nn.ReLU(), new rg.nn.Linear(4, 3));
    const other = new Map([...new rg.nn.Sequential(new rg.nn.Linear(5, 4), new rg.nn.ReLU(), new rg.nn.Linear(4, 3)).stateDict()]);
    const x = rg.randn([6, 5]).requireGrad();
    const y = tripled(rg.nn.functionalCall(model, other, x));
    rg.sum(rg.mul(y, y)).backward();
    return { y, dx: x.grad! };
  });
  const g = run("webgpu"), c = run("cpu");
  await compare(g.y, c.y, "forward", modelTol(c.y.dataSync()));
  await compare(g.dx, c.dx, "input gradient through the custom rule", modelTol(c.dx.dataSync()));
});

gpuTest("webgpu core: SGD's tensor-op definition agrees with the fused one-dispatch step", async () => {
  const run = (fused: boolean) => onBackend("webgpu", () => {
    rg.manualSeed(23);
    const a = rg.randn([300]).requireGrad(), b = rg.randn([7, 9]).requireGrad();
    const opt = new rg.optim.SGD([{ params: [a] }, { params: [b], lrScale: 0.5 }], { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
    opt.useFusedKernel = fused;
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      a.grad = rg.randn([300]);
      b.grad = rg.randn([7, 9]);
      opt.step();
    }
    return [a, b];
  });
  const [composed, fused] = [run(false), run(true)];
  for (let i = 0; i < 2; i++) {
    assert.equal(composed[i].backend.name, "webgpu");
    await compare(composed[i], rg.tensor(await fused[i].data(), fused[i].shape, cpu()), `parameter ${i}`, ELEMENTWISE);
  }
});

gpuTest("webgpu core: the PowerGrad reference (customGrad, composed ops) equals the fused kernel on the GPU", async () => {
  rg.manualSeed(24);
  const values = rg.scale(rg.randn([9, 10]), 4).dataSync();
  const labels = [1, 0, 9, 4, 4, 3, 8, 2, 6];
  for (const alpha of [0.5, 0.1]) {
    const [z1, z2] = onBackend("webgpu", () => [rg.tensor(values, [9, 10]).requireGrad(), rg.tensor(values, [9, 10]).requireGrad()]);
    rg.crossEntropy(z1, labels, { powerGrad: alpha, labelSmoothing: 0.1 }).backward();
    rg.powerGradCrossEntropy(z2, labels, alpha, { labelSmoothing: 0.1 }).backward();
    await compare(z2.grad!, rg.tensor(await z1.grad!.data(), [9, 10], cpu()), `α = ${alpha}`, { rtol: 1e-5, atol: 1e-7 });
  }
});

test.run();
