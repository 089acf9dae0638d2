/**
 * The pipelined-backprop simulator (optim/pipelined.ts) against a direct float64
 * reimplementation of its definition on a quadratic loss (stale gradients per stage, momentum,
 * weight decay, Spike Compensation, Linear Weight Prediction, each combination); with no delay
 * it is SGD with momentum; a stage's forward weights stay at the initial ones while its
 * pipeline fills; evaluation sees the latest weights; the state round-trips strictly. On WebGPU
 * (skipped where no adapter exists) a small CNN trained a few steps under each mitigation ends
 * with the CPU's weights, velocities and pipeline queues.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";
import { gpuTest, onBackend } from "./support/gpu.ts";

const targets = [[0.5, -1, 2], [1.5, 0.25]];
const curvature = [[1, 0.3, 2], [0.7, 1.2]];

/** The gradient of ½ Σ cᵢ(wᵢ − tᵢ)² at w. */
const quadraticGrad = (w: ArrayLike<number>, s: number) => Array.from(w, (v, i) => curvature[s][i] * (v - targets[s][i]));

interface Setting {
  lr: number; momentum: number; weightDecay: number; delays: number[]; spikeCompensation: boolean; linearWeightPrediction: boolean;
}

/** The definition, in float64: forward weights u (queued D steps), v ← m·v + g + wd·w, w ← w − η(a·v + b·g′), u = w or w − η·D·v. */
function reference(setting: Setting, steps: number): { master: number[][]; forward: number[][] } {
  const { lr, momentum: m, weightDecay, delays } = setting;
  const init = [[0, 0, 0], [0, 0]];
  const master = init.map((w) => [...w]), velocity = init.map((w) => w.map(() => 0));
  const queues = init.map((w, s) => Array.from({ length: delays[s] }, () => [...w]));
  const forward = init.map((w) => [...w]);
  for (let t = 0; t < steps; t++) {
    for (let s = 0; s < 2; s++) {
      const D = delays[s];
      const g = quadraticGrad(forward[s], s).map((gi, i) => gi + weightDecay * master[s][i]);
      const a = setting.spikeCompensation ? m ** D : 1, b = setting.spikeCompensation ? (1 - m ** D) / (1 - m) : 0;
      velocity[s] = velocity[s].map((v, i) => m * v + g[i]);
      master[s] = master[s].map((w, i) => w - lr * (a * velocity[s][i] + b * g[i]));
      const next = master[s].map((w, i) => setting.linearWeightPrediction ? w - lr * D * velocity[s][i] : w);
      queues[s].push(next);
      forward[s] = queues[s].shift()!;
    }
  }
  return { master, forward };
}

function simulate(setting: Setting, steps: number) {
  const params = [rg.zeros([3]).requireGrad(), rg.zeros([2]).requireGrad()];
  const opt = new rg.optim.PipelinedSGD(params.map((p) => [p]), setting);
  for (let t = 0; t < steps; t++) {
    opt.zeroGrad();
    params.forEach((p, s) => (p.grad = rg.tensor(quadraticGrad(p.dataSync(), s))));
    opt.step();
  }
  return { params, opt };
}

for (const spikeCompensation of [false, true]) {
  for (const linearWeightPrediction of [false, true]) {
    test(`12 steps equal the float64 definition: delays [3, 1], momentum 0.9, weight decay${spikeCompensation ? ", SC" : ""}${linearWeightPrediction ? ", LWP" : ""}`, () => {
      const setting = { lr: 0.05, momentum: 0.9, weightDecay: 0.01, delays: [3, 1], spikeCompensation, linearWeightPrediction };
      const { params, opt } = simulate(setting, 12);
      const expected = reference(setting, 12);
      params.forEach((p, s) => assertClose(p, expected.forward[s], `stage ${s}: forward weights`, { rtol: 1e-5, atol: 1e-6 }));
      const restore = opt.evaluationWeights();
      params.forEach((p, s) => assertClose(p, expected.master[s], `stage ${s}: latest weights for evaluation`, { rtol: 1e-5, atol: 1e-6 }));
      restore();
      params.forEach((p, s) => assertClose(p, expected.forward[s], `stage ${s}: forward weights back after evaluation`, { rtol: 1e-5, atol: 1e-6 }));
    });
  }
}

test("the mitigations change the run (so the comparisons above can tell them apart), and a stage's forward weights stay initial while its pipeline fills", () => {
  const base = { lr: 0.05, momentum: 0.9, weightDecay: 0, delays: [3, 1], spikeCompensation: false, linearWeightPrediction: false };
  const finals = [base, { ...base, spikeCompensation: true }, { ...base, linearWeightPrediction: true }]
    .map((s) => [...simulate(s, 6).params[0].dataSync()]);
  assert.not.equal(finals[0], finals[1]);
  assert.not.equal(finals[0], finals[2]);
  for (const steps of [1, 2, 3, 4]) {
    const { params } = simulate(base, steps);
    const moved = params[0].dataSync().some((v) => v !== 0);
    assert.is(moved, steps >= 4, `delay-3 stage after ${steps} steps: forward weights ${moved ? "moved" : "initial"}`);
    assert.is(params[1].dataSync().some((v) => v !== 0), steps >= 2, `delay-1 stage after ${steps} steps`);
  }
});

test("no delay: PipelinedSGD is SGD with momentum and weight decay (torch.optim.SGD's semantics)", () => {
  rg.manualSeed(3);
  const make = () => new rg.nn.Sequential(new rg.nn.Linear(5, 4), new rg.nn.ReLU(), new rg.nn.Linear(4, 3));
  const a = make();
  const b = make();
  b.loadStateDict(a.stateDict());
  const x = rg.randn([6, 5]);
  const labels = [0, 1, 2, 0, 1, 2];
  const stages = rg.optim.layerStages(a);
  assert.equal(stages.map((s) => s.length), [2, 2], "one stage per Linear: weight and bias");
  const ours = new rg.optim.PipelinedSGD(stages, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3, delays: [0, 0], spikeCompensation: true, linearWeightPrediction: true });
  const sgd = new rg.optim.SGD(b.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
  for (let step = 0; step < 4; step++) {
    for (const [model, opt] of [[a, ours], [b, sgd]] as const) {
      opt.zeroGrad();
      rg.crossEntropy(model.forward(x), labels).backward();
      opt.step();
    }
  }
  a.parameters().forEach((p, i) => assertClose(p, b.parameters()[i], `parameter ${i}`, { rtol: 1e-5, atol: 1e-6 }));
});

test("state: stateDict/loadStateDict continue the run exactly; a missing or mis-shaped key is a StateDictError", () => {
  const setting = { lr: 0.05, momentum: 0.9, weightDecay: 0, delays: [3, 1], spikeCompensation: true, linearWeightPrediction: true };
  const { params, opt } = simulate(setting, 5);
  const params2 = params.map((p) => rg.tensor(p.dataSync(), p.shape).requireGrad());
  const opt2 = new rg.optim.PipelinedSGD(params2.map((p) => [p]), setting);
  opt2.loadStateDict(opt.stateDict());
  for (const [ps, o] of [[params, opt], [params2, opt2]] as const) {
    o.zeroGrad();
    ps.forEach((p, s) => (p.grad = rg.tensor(quadraticGrad(p.dataSync(), s))));
    o.step();
  }
  params.forEach((p, s) => assert.equal([...params2[s].dataSync()], [...p.dataSync()], `stage ${s}`));
  const partial = new Map(opt.stateDict());
  partial.delete("state.0.queue.2");
  partial.set("state.1.master", rg.zeros([3]));
  assert.throws(() => opt2.loadStateDict(partial), (e: Error) =>
    e instanceof rg.StateDictError && /missing keys: state.0.queue.2/.test(e.message) && /state.1.master: expected \[2\], got \[3\]/.test(e.message));
});

test("bad settings are refused by name", () => {
  const p = [[rg.zeros([2]).requireGrad()]];
  const isValue = (pattern: RegExp) => (e: Error) => e instanceof rg.ValueError && pattern.test(e.message);
  assert.throws(() => new rg.optim.PipelinedSGD(p, { lr: 0.1, delays: [1, 2] }), isValue(/delays must be 1 integers/));
  assert.throws(() => new rg.optim.PipelinedSGD(p, { lr: 0.1, momentum: 1 }), isValue(/momentum must be in \[0, 1\)/));
  assert.throws(() => new rg.optim.PipelinedSGD(p, { lr: -1 }), isValue(/lr must be/));
  assert.throws(() => new rg.optim.PipelinedSGD([p[0], p[0]], { lr: 0.1 }), isValue(/more than one stage/));
});

/** conv → BatchNorm → ReLU → linear: three stages. The conv has no bias (as in a ResNet: before BatchNorm its gradient is only round-off). */
const smallCnn = () => new rg.nn.Sequential(new rg.nn.Conv2d(2, 3, 3, { padding: 1, bias: false }), new rg.nn.BatchNorm2d(3),
  new rg.nn.ReLU(), new rg.nn.Flatten(), new rg.nn.Linear(3 * 5 * 5, 4));

/**
 * Eight steps of the small CNN (stage delays 4, 2, 0) on `backend`, from the same initial
 * weights and batch; read back: the model's state (its forward weights and BatchNorm
 * statistics) and the optimiser's (every parameter's latest weights, velocity and queue).
 */
async function trainSmallCnn(backend: string, pipeline: { spikeCompensation: boolean; linearWeightPrediction: boolean }) {
  rg.manualSeed(5);
  const initial = smallCnn().stateDict();
  const x = rg.randn([6, 2, 5, 5]).dataSync();
  const labels = [0, 1, 2, 3, 1, 2];
  const { model, opt } = onBackend(backend, () => {
    const model = smallCnn();
    for (const [name, t] of model.stateDict()) t.copy_(initial.get(name)!);
    const opt = new rg.optim.PipelinedSGD(rg.optim.layerStages(model), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3, ...pipeline });
    const input = rg.tensor(x, [6, 2, 5, 5]);
    for (let step = 0; step < 8; step++) {
      rg.tidy(() => {
        opt.zeroGrad();
        rg.crossEntropy(model.forward(input), labels).backward();
        opt.step();
      });
    }
    return { model, opt };
  });
  const read = async (entries: Iterable<[string, rg.Tensor]>) =>
    new Map(await Promise.all([...entries].map(async ([k, t]) => [k, { backend: t.backend.name, values: await t.data() }] as const)));
  return { model: await read(model.stateDict()), optimiser: await read(opt.stateDict()) };
}

for (const [label, pipeline] of [
  ["naive", { spikeCompensation: false, linearWeightPrediction: false }],
  ["SC", { spikeCompensation: true, linearWeightPrediction: false }],
  ["LWP", { spikeCompensation: false, linearWeightPrediction: true }],
  ["SC + LWP", { spikeCompensation: true, linearWeightPrediction: true }],
] as const) {
  gpuTest(`webgpu: 8 pipelined steps (${label}) of a small CNN give the CPU's forward weights, BatchNorm statistics, latest weights, velocities and queues (float32: rtol 1e-4, atol 1e-5 of each tensor's RMS)`, async () => {
    const [onGpu, onCpu] = [await trainSmallCnn("webgpu", pipeline), await trainSmallCnn("cpu", pipeline)];
    for (const [kind, gpuSide, cpuSide] of [["model", onGpu.model, onCpu.model], ["optimiser", onGpu.optimiser, onCpu.optimiser]] as const) {
      assert.equal([...gpuSide.keys()], [...cpuSide.keys()], `${kind}: the same names`);
      for (const [name, { backend, values }] of gpuSide) {
        assert.is(backend, "webgpu", `${kind} ${name} lives on the GPU`);
        const expected = cpuSide.get(name)!.values;
        const rms = Math.sqrt(expected.reduce((a, v) => a + v * v, 0) / expected.length);
        assertClose(values, expected, `${label}: ${kind} ${name}`, { rtol: 1e-4, atol: Math.max(1e-9, 1e-5 * rms) });
      }
    }
  });
}

gpuTest("webgpu: a pipelined run (SC + LWP) checkpointed after its first epoch and resumed ends with the uninterrupted run's weights and optimiser state, bitwise", async () => {
  const train = rg.data.synthetic({ n: 24, channels: 2, height: 5, width: 5, classes: 4, seed: 1 });
  const test = rg.data.synthetic({ n: 8, channels: 2, height: 5, width: 5, classes: 4, seed: 1, split: "test" });
  const config: rg.train.TrainConfig = {
    epochs: 2, steps: 0, batchSize: 6, lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0, schedule: "constant", warmup: 0,
    powerGrad: 1, labelSmoothing: 0, seed: 3, shuffle: true, augment: "none", mean: [0.3, 0.3], std: [0.3, 0.3], evalBatchSize: 8,
  };
  const optimiser = (m: rg.nn.Module, c: rg.train.TrainConfig) =>
    new rg.optim.PipelinedSGD(rg.optim.layerStages(m), { lr: c.lr, momentum: c.momentum, spikeCompensation: true, linearWeightPrediction: true });
  // The whole run on the GPU (onBackend would restore the CPU at the first await).
  rg.setBackend("webgpu");
  const [whole, resumed] = await (async () => {
    rg.manualSeed(3);
    const trainer = new rg.train.Trainer(smallCnn(), train, test, config, optimiser);
    let afterFirstEpoch: Uint8Array | null = null;
    await trainer.run({ onEpoch: async (record, checkpoint) => void (record.epoch === 1 && (afterFirstEpoch = await checkpoint())) });
    const again = new rg.train.Trainer(smallCnn(), train, test, config, optimiser);
    again.resume(afterFirstEpoch!, "the first epoch's checkpoint");
    await again.run();
    return [trainer, again];
  })().finally(() => rg.setBackend("cpu"));
  const everything = (t: rg.train.Trainer) => [...t.model.stateDict(), ...t.optimizer.stateDict()];
  assert.is(whole.optimizer.params[0].backend.name, "webgpu");
  assert.is(resumed.step, whole.step);
  const expected = new Map(everything(whole));
  for (const [name, t] of everything(resumed)) assertClose(await t.data(), await expected.get(name)!.data(), name, { rtol: 0, atol: 0 });
});

test.run();
