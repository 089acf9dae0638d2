/**
 * SGD and the learning-rate schedules against torch.optim (test/fixtures/optim.safetensors):
 * three steps with given gradients per configuration, parameters compared after each step.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose, leaf, loadFixture } from "./helpers.ts";

const fx = loadFixture("optim.safetensors");

for (const name of ["sgd_plain", "sgd_momentum", "sgd_nesterov_wd", "sgd_dampening"]) {
  test(`${name}: three steps equal torch.optim.SGD`, () => {
    const m = fx.meta(name) as { lr: number; momentum: number; dampening: number; nesterov: boolean; weight_decay: number };
    const params = ["p0", "p1"].map((p) => leaf(fx.get(`${name}.init.${p}`)));
    const opt = new rg.optim.SGD(params, {
      lr: m.lr, momentum: m.momentum, dampening: m.dampening, nesterov: m.nesterov, weightDecay: m.weight_decay,
    });
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      params.forEach((p, i) => (p.grad = rg.tensor(fx.get(`${name}.grad.${step}.p${i}`).dataSync(), p.shape)));
      opt.step();
      params.forEach((p, i) => assertClose(p, fx.get(`${name}.after.${step}.p${i}`), `${name} step ${step} p${i}`, { rtol: 1e-6, atol: 1e-7 }));
    }
  });
}

test("schedules equal torch.optim.lr_scheduler over 12 epochs", () => {
  const expected = fx.meta("schedules") as Record<string, number[]>;
  const { step, multiStep, cosine, warmup } = rg.optim.schedules;
  const ours: Record<string, rg.optim.Schedule> = {
    step: step(0.1, 3, 0.1),
    multistep: multiStep(0.1, [3, 7], 0.1),
    cosine: cosine(0.1, 12),
    warmup_cosine: warmup(cosine(0.1, 9), 3, 0.1),
  };
  for (const [name, lrs] of Object.entries(expected)) {
    assertClose(lrs.map((_, t) => ours[name](t)), lrs, `schedule ${name}`, { rtol: 1e-9, atol: 1e-12 });
  }
  assert.equal(Object.keys(expected).sort(), Object.keys(ours).sort());
});

test("SGD rejects bad hyper-parameters with clear errors", () => {
  const p = rg.zeros([2]).requireGrad();
  assert.throws(() => new rg.optim.SGD([p], { lr: -1 }), (e: Error) => e instanceof rg.ValueError && /lr/.test(e.message));
  assert.throws(() => new rg.optim.SGD([p], { lr: 0.1, nesterov: true }), /Nesterov/);
});

test("SGD.loadStateDict is strict: missing, unexpected and mis-shaped momentum buffers are a StateDictError naming them", () => {
  const make = () => {
    const params = [rg.zeros([2]).requireGrad(), rg.zeros([3]).requireGrad()];
    return new rg.optim.SGD(params, { lr: 0.1, momentum: 0.9 });
  };
  const trained = make();
  trained.params.forEach((p) => (p.grad = rg.ones(p.shape)));
  trained.step();
  const state = trained.stateDict();
  const refuses = (s: Map<string, rg.Tensor>, pattern: RegExp) =>
    assert.throws(() => make().loadStateDict(s), (e: unknown) => e instanceof rg.StateDictError && pattern.test((e as Error).message));

  refuses(new Map([["state.0.momentum_buffer", state.get("state.0.momentum_buffer")!]]), /missing keys: state\.1\.momentum_buffer/);
  refuses(new Map([...state, ["state.7.momentum_buffer", rg.zeros([2])]]), /unexpected keys: state\.7\.momentum_buffer/);
  refuses(new Map([...state, ["momentum", rg.zeros([2])]]), /unexpected keys: momentum/);
  refuses(new Map([["state.0.momentum_buffer", rg.zeros([3])], ["state.1.momentum_buffer", rg.zeros([3])]]),
    /shape mismatch: state\.0\.momentum_buffer: expected \[2\], got \[3\]/);
  const plain = new rg.optim.SGD([rg.zeros([2]).requireGrad(), rg.zeros([3]).requireGrad()], { lr: 0.1 });
  assert.throws(() => plain.loadStateDict(state), /unexpected keys: state\.0\.momentum_buffer, state\.1\.momentum_buffer/,
    "momentum 0 keeps no buffers");

  // The full state loads, and a step from it equals the original's next step.
  const restored = make();
  restored.params.forEach((p, i) => p.backend.write(p.buffer, trained.params[i].dataSync()));
  restored.loadStateDict(state);
  for (const opt of [trained, restored]) {
    opt.params.forEach((p) => (p.grad = rg.ones(p.shape)));
    opt.step();
  }
  restored.params.forEach((p, i) => assert.equal([...p.dataSync()], [...trained.params[i].dataSync()]));
  // An empty state is a run saved before its first step; strict: false skips what is missing.
  make().loadStateDict(new Map());
  make().loadStateDict(new Map([["state.0.momentum_buffer", rg.zeros([2])]]), { strict: false });
});

test.run();
