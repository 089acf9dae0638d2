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

test.run();
