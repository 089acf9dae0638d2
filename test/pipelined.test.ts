/**
 * The pipelined-backprop simulator (optim/pipelined.ts) against a direct float64
 * reimplementation of its definition on a quadratic loss (stale gradients per stage, momentum,
 * weight decay, Spike Compensation, Linear Weight Prediction, each combination); with no delay
 * it is SGD with momentum; a stage's forward weights stay at the initial ones while its
 * pipeline fills; evaluation sees the latest weights; the state round-trips strictly.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";

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

test.run();
