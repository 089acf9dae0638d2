/**
 * Adam, AdamW, SGD, LARS, LAMB and scale-amended SGD against test/fixtures/optimisers.safetensors
 * (gen_fixtures.py's gen_optimisers): five steps of a small network in two parameter groups,
 * fed each step's gradients from PyTorch, with every parameter and every state tensor (by
 * PyTorch's state-dict names) compared after each step; Adam and AdamW are torch.optim's own,
 * LARS and LAMB follow timm's code, scale-amended SGD's multipliers come from float64
 * Jacobians. A state dict written after three steps loads into the PyTorch optimiser, which
 * continues to the uninterrupted run's parameters (check_optimiser_state.py; Node pass only).
 * Gradient clipping against torch.nn.utils' own, AGC against timm's; parameter groups by
 * name and kind; the weight EMA; the per-layer rate log; bad settings rejected by name.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { assertClose, formulaInit, loadFixture } from "./helpers.ts";
import { type CaseMeta, makeOptimiser, OPTIMISER_CASES, optimiserNet } from "./support/optimisers.ts";

const fx = loadFixture("optimisers.safetensors");
const STEPS = 5;

/** Float32 agreement: rtol 2e-5 with an absolute floor at 1e-5 of the tensor's RMS. */
function closeF32(actual: rg.Tensor | ArrayLike<number>, expected: rg.Tensor, label: string): void {
  const e = expected.dataSync();
  let s = 0;
  for (const v of e) s += v * v;
  assertClose(actual, e, label, { rtol: 2e-5, atol: Math.max(1e-9, 1e-5 * Math.sqrt(s / Math.max(1, e.length))) });
}

/** One fixture step on our side: a training forward (scale-amended SGD's statistics), PyTorch's gradients, the step. */
function fixtureStep(model: rg.nn.Module, opt: rg.optim.Optimizer, name: string, s: number): void {
  rg.tidy(() => {
    opt.zeroGrad();
    model.forward(rg.tensor(fx.get(`x.${s}`).dataSync(), fx.get(`x.${s}`).shape));
  });
  opt.params.forEach((p, i) => (p.grad = rg.tensor(fx.get(`${name}.grad.${s}.${i}`).dataSync(), p.shape)));
  opt.step();
}

/** A real training step on the fixture's batch s (forward, cross-entropy, backward, step). */
function trainStep(model: rg.nn.Module, opt: rg.optim.Optimizer, s: number): void {
  rg.tidy(() => {
    opt.zeroGrad();
    const x = fx.get(`x.${s}`);
    rg.crossEntropy(model.forward(rg.tensor(x.dataSync(), x.shape)), Array.from(fx.get(`labels.${s}`).dataSync())).backward();
    opt.step();
  });
}

function setUp(name: string) {
  const meta = fx.meta(name) as unknown as CaseMeta;
  const model = optimiserNet();
  formulaInit(model);
  const opt = makeOptimiser(model, meta);
  return { meta, model, opt };
}

for (const name of OPTIMISER_CASES) {
  test(`${name}: five steps in two groups equal the PyTorch reference, parameters and state`, () => {
    const { meta, model, opt } = setUp(name);
    for (let s = 0; s < STEPS; s++) {
      fixtureStep(model, opt, name, s);
      opt.params.forEach((p, i) => closeF32(p, fx.get(`${name}.after.${s}.${i}`), `${name} step ${s} parameter ${i}`));
      const state = opt.stateDict();
      const expectedKeys = fx.keys().filter((k) => k.startsWith(`${name}.state.${s}.`)).map((k) => `state.${k.slice(`${name}.state.${s}.`.length)}`);
      assert.equal([...state.keys()].sort(), expectedKeys.sort(), `${name} step ${s}: state-dict names`);
      for (const [key, t] of state) closeF32(t, fx.get(`${name}.state.${s}.${key.slice("state.".length)}`), `${name} step ${s} ${key}`);
      if (meta.kind === "scale_amended") {
        const rates = new Map(opt.layerRates!().map((r) => [opt.params.indexOf(r.param), r]));
        const amended = fx.keys().filter((k) => k.startsWith(`${name}.multiplier.${s}.`)).map((k) => Number(k.split(".").pop()));
        assert.equal(amended.length, 7, "every conv and linear weight, every bias but the one before BatchNorm");
        for (const i of amended) {
          const factor = rates.get(i)?.factor;
          assert.ok(factor, `${name} step ${s}: parameter ${i} has a multiplier`);
          closeF32(factor!, fx.get(`${name}.multiplier.${s}.${i}`), `${name} step ${s} multiplier of parameter ${i}`);
        }
        const plain = [...rates].filter(([, r]) => r.factor === null).map(([i]) => i).sort();
        assert.equal(plain, [meta.names["0.bias"], meta.names["1.weight"], meta.names["1.bias"]].sort(), "the bias before BatchNorm and BatchNorm's own keep the rate");
      }
    }
  });
}

const python = "/usr/bin/python3";
const isDeno = "Deno" in globalThis;
const torchReady = !isDeno && spawnSync(python, ["-c", "import torch"]).status === 0;
if (!torchReady) console.log(`optimisers.test: PyTorch continuation ${isDeno ? "runs from the Node pass" : "skipped: no /usr/bin/python3 with torch"}`);

(torchReady ? test : test.skip)("a state dict saved after three steps loads into the PyTorch optimiser, which continues to the uninterrupted run", () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-optim-"));
  const files = OPTIMISER_CASES.map((name) => {
    const { model, opt } = setUp(name);
    for (let s = 0; s < 3; s++) fixtureStep(model, opt, name, s);
    const saved = new Map([...opt.stateDict()]);
    opt.params.forEach((p, i) => saved.set(`param.${i}`, p));
    const file = join(dir, `${name}.safetensors`);
    writeFileSync(file, rg.io.writeSafetensors(saved));
    return file;
  });
  const r = spawnSync(python, ["test/fixtures/check_optimiser_state.py", "3", ...files], { encoding: "utf8" });
  assert.is(r.status, 0, `PyTorch's continuation:\n${r.stdout}${r.stderr}`);
  for (const name of OPTIMISER_CASES) assert.match(r.stdout, new RegExp(`${name}: loaded \\d+ state tensors.*\\n${name}: continued to step 5, every parameter agrees`));
});

test("clip_grad_norm_ (p = 2, 1, ∞), clip_grad_value_ and AGC equal PyTorch's and timm's", () => {
  const n = 4;
  for (const name of ["norm2", "norm2_loose", "norminf", "norm1", "value", "agc", "agc_loose"]) {
    const m = fx.meta(name) as { kind: string; norm_type: number | "inf"; c: number };
    const params = Array.from({ length: n }, (_, k) => {
      const p = rg.tensor(fx.get(`clip.weight.${k}`).dataSync(), fx.get(`clip.weight.${k}`).shape).requireGrad();
      p.grad = rg.tensor(fx.get(`clip.grad.${k}`).dataSync(), p.shape);
      return p;
    });
    if (m.kind === "norm") {
      const total = rg.optim.clipGradNorm(params, m.c, m.norm_type === "inf" ? Infinity : m.norm_type);
      assert.equal([...total.shape], [], "the total norm is a 0-d tensor");
      closeF32(total, fx.get(`${name}.total`), `${name}: total norm`);
    } else if (m.kind === "value") {
      rg.optim.clipGradValue(params, m.c);
    } else {
      rg.optim.adaptiveClipGrad(params, m.c);
    }
    params.forEach((p, k) => closeF32(p.grad!, fx.get(`${name}.clipped.${k}`), `${name}: gradient ${k}`));
  }
  // The cases do clip: the loose norm leaves the gradients alone, the tight one does not.
  assert.not.equal([...fx.get("norm2.clipped.0").dataSync()], [...fx.get("clip.grad.0").dataSync()]);
  assert.equal([...fx.get("norm2_loose.clipped.0").dataSync()], [...fx.get("clip.grad.0").dataSync()]);
});

test("AGC with the skip gains excluded: a zero-initialised gain gets its whole gradient, the other parameters are still clipped", () => {
  const model = rg.models.createModel("resnet20-nonorm", { inChannels: 1, numClasses: 3, imageSize: 8, widthMultiplier: 0.125 });
  rg.manualSeed(3);
  const x = rg.randn([2, 1, 8, 8]);
  const run = (exclude: string[]) => {
    model.zeroGrad();
    rg.nn.crossEntropy(model.forward(x), new Int32Array([0, 2])).backward();
    const before = new Map([...model.namedParameters()].map(([n, p]) => [n, [...p.grad!.dataSync()]]));
    const optimizer = rg.optim.createOptimizer(model, { name: "sgd", agc: 0.01, agcExclude: exclude }, { lr: 0, momentum: 0, nesterov: false, weightDecay: 0 });
    optimizer.step();
    return { before, after: new Map([...model.namedParameters()].map(([n, p]) => [n, [...p.grad!.dataSync()]])) };
  };
  const free = run(["skip_gain"]);
  const gains = [...free.before.keys()].filter((n) => n.endsWith("skip_gain"));
  assert.is(gains.length, 9);
  for (const n of gains) {
    assert.ok(Math.abs(free.before.get(n)![0]) > 1e-5, `${n}: its gradient exceeds the bound λ·ε = 1e-5, so AGC would clip it`);
    assert.equal(free.after.get(n), free.before.get(n), `${n} unclipped`);
  }
  assert.not.equal(free.after.get("conv1.weight"), free.before.get("conv1.weight"), "the stem is still clipped");
  const all = run([]);
  for (const n of gains) assert.ok(Math.abs(all.after.get(n)![0]) <= 1e-5 * (1 + 1e-6), `${n} clipped to λ·ε without the exclusion`);
  model.dispose();
  x.dispose();
});

test("AGC leaves the classifier out; groups by kind and name; noDecayNormBias in one line", () => {
  const model = optimiserNet();
  const clipped = rg.optim.parametersExceptClassifier(model);
  const names = new Map([...model.namedParameters()].map(([n, p]) => [p, n]));
  assert.equal(clipped.map((p) => names.get(p)), ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "6.weight", "6.bias"]);
  // exclude: by full name, or by last part for every parameter of that name; a name that matches none is refused.
  assert.equal(rg.optim.parametersExceptClassifier(model, ["bias", "3.weight"]).map((p) => names.get(p)), ["0.weight", "1.weight", "6.weight"]);
  assert.throws(() => rg.optim.parametersExceptClassifier(model, ["skip_gain"]), (e: Error) => e instanceof rg.ValueError && /"skip_gain" names no parameter/.test(e.message));

  const groups = rg.optim.noDecayNormBias(model);
  assert.equal(groups.map((g) => [...g.params].map((p) => names.get(p))), [
    ["0.weight", "3.weight", "6.weight", "8.weight"],
    ["0.bias", "1.weight", "1.bias", "3.bias", "6.bias", "8.bias"],
  ]);
  assert.is(groups[1].weightDecay, 0);
  const opt = new rg.optim.AdamW(rg.optim.noDecayNormBias(model), { lr: 1e-3, weightDecay: 0.05 });
  assert.equal(opt.paramGroups.map((g) => g.options.weightDecay), [0.05, 0]);

  const byName = rg.optim.groupParameters<rg.optim.SGDGroupOptions>(model, [
    { names: "8.*", lrScale: 0.1 },
    { names: /^[36]\./, kinds: ["weight"], momentum: 0.5 },
    { kinds: ["norm"], weightDecay: 0 },
  ]);
  assert.equal(byName.map((g) => [...g.params].map((p) => names.get(p))), [
    ["0.weight", "0.bias", "3.bias", "6.bias"], ["8.weight", "8.bias"], ["3.weight", "6.weight"], ["1.weight", "1.bias"],
  ]);
  const sgd = new rg.optim.SGD(byName, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
  assert.equal(sgd.paramGroups.map((g) => [g.lrScale, g.options.momentum, g.options.weightDecay]), [[1, 0.9, 1e-4], [0.1, 0.9, 1e-4], [1, 0.5, 1e-4], [1, 0.9, 0]]);
  assert.throws(() => rg.optim.groupParameters(model, [{ kinds: ["conv" as rg.optim.ParamKind] }]), /unknown kind "conv"/);
  assert.throws(() => new rg.optim.SGD([{ params: model.parameters(), weight_decay: 0 } as never], { lr: 0.1 }), /unknown option "weight_decay"/);
});

test("the weight EMA averages every float tensor, copies counters, swaps in for evaluation and restores", async () => {
  const model = optimiserNet();
  formulaInit(model);
  const start = new Map([...model.stateDict()].map(([k, t]) => [k, t.dataSync().slice()]));
  const ema = new rg.optim.ModelEMA(model, 0.75);
  const opt = new rg.optim.OptimizerChain(new rg.optim.SGD(model.parameters(), { lr: 0.1 }), [], ema);
  trainStep(model, opt, 0); // a training forward moves the BatchNorm buffers too
  const after = model.stateDict();
  const averaged = ema.stateDict();
  for (const [name, t] of after) {
    const now = t.dataSync(), before = start.get(name)!;
    const expected = t.dtype === "int64" ? now : Float64Array.from(now, (v, i) => 0.75 * before[i] + 0.25 * v);
    assertClose(averaged.get(name)!, expected, `EMA of ${name}`, { rtol: 1e-6, atol: 1e-7 });
  }
  assert.equal(averaged.get("1.num_batches_tracked")!.dataSync()[0], 1);
  const trained = [...model.stateDict().values()].map((t) => [...t.dataSync()]);
  const inside = await ema.applied(() => [...model.stateDict().values()].map((t) => [...t.dataSync()]));
  assert.equal(inside, [...averaged.values()].map((t) => [...t.dataSync()]), "the averages are in the model inside applied()");
  assert.equal([...model.stateDict().values()].map((t) => [...t.dataSync()]), trained, "the trained weights are back after");
  assert.ok([...opt.stateDict().keys()].includes("ema.0.weight"), "the chain's state carries the averages");
});

test("layer rates: LARS's trust ratio and scale-amended SGD's per-channel multipliers by parameter name", async () => {
  for (const name of ["lars", "scale_amended"] as const) {
    const { model, opt } = setUp(name);
    fixtureStep(model, opt, name, 0);
    const names = new Map([...model.namedParameters()].map(([n, p]) => [p, n]));
    const rates = await rg.optim.readLayerRates(opt, names);
    const meta = fx.meta(name) as unknown as CaseMeta;
    assert.equal(Object.keys(rates).sort(), Object.keys(meta.names).sort(), `${name}: every parameter that stepped`);
    const lr = meta.options.lr as number;
    assert.is(rates["1.weight"].rate, lr * meta.lr_scale, `${name}: BatchNorm's γ steps at its group's rate`);
    const first = rates["0.weight"];
    assert.ok(Math.abs(first.rate - lr * first.factor) <= 1e-12 * lr, `${name}: rate = lr × factor`);
    if (name === "scale_amended") {
      const m = fx.get("scale_amended.multiplier.0.0").dataSync();
      assertClose([first.factor, first.min!, first.max!], [(m[0] + m[1] + m[2]) / 3, Math.min(...m), Math.max(...m)], "per-channel mean, min, max", { rtol: 1e-5, atol: 0 });
    } else {
      assert.is(first.min, undefined, "one trust ratio per layer");
      assert.ok(first.factor > 0 && first.factor !== 1, `LARS adapts decayed weights (trust ${first.factor})`);
    }
  }
});

test("bad settings and mismatched state are rejected with errors that name them", () => {
  const p = rg.zeros([2]).requireGrad();
  const fails = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: Error) => e instanceof rg.RetrogradError && pattern.test(e.message));
  fails(() => new rg.optim.Adam([p], { betas: [0.9, 1] }), /Adam: betas must be two numbers in \[0, 1\)/);
  fails(() => new rg.optim.AdamW([p], { eps: -1 }), /AdamW: eps must be/);
  fails(() => new rg.optim.LARS([p], { lr: 1, trustCoef: 0 }), /LARS: trustCoef must be/);
  fails(() => new rg.optim.LAMB([p], { maxGradNorm: 0 }), /LAMB: maxGradNorm/);
  fails(() => new rg.optim.ScaleAmendedSGD([p], { lr: 1, model: optimiserNet(), clamp: [2, 1] }), /ScaleAmendedSGD: clamp/);
  fails(() => rg.optim.createOptimizer(optimiserNet(), { name: "adamax" as "adam" }, { lr: 1, momentum: 0, nesterov: false, weightDecay: 0 }), /optimizer: name must be one of sgd, adam/);
  fails(() => rg.optim.createOptimizer(optimiserNet(), { name: "sgd", ema: 1 }, { lr: 1, momentum: 0, nesterov: false, weightDecay: 0 }), /optimizer: ema must be a number in \[0, 1\)/);

  const { model, opt } = setUp("adam");
  fixtureStep(model, opt, "adam", 0);
  const state = opt.stateDict();
  const sgd = new rg.optim.SGD(optimiserNet().parameters(), { lr: 0.1, momentum: 0.9 });
  fails(() => sgd.loadStateDict(state), /SGD\.loadStateDict: missing keys: state\.0\.momentum_buffer, .*\. unexpected keys: state\.0\.step, state\.0\.exp_avg, state\.0\.exp_avg_sq/);
  const partial = new Map([...state].filter(([k]) => k !== "state.3.exp_avg_sq"));
  const fresh = setUp("adam").opt;
  fails(() => fresh.loadStateDict(partial), /^Adam\.loadStateDict: missing keys: state\.3\.exp_avg_sq$/);
  fails(() => fresh.loadStateDict(new Map([...state].filter(([k]) => !k.startsWith("state.3.")))), /^Adam\.loadStateDict: missing keys: state\.3\.exp_avg, state\.3\.exp_avg_sq, state\.3\.step$/);
  fails(() => fresh.loadStateDict(new Map([...state, ["state.10.exp_avg", rg.zeros([1])]])), /^Adam\.loadStateDict: unexpected keys: state\.10\.exp_avg$/);
  fails(() => fresh.loadStateDict(new Map([...state].map(([k, t]) => [k, k === "state.0.exp_avg" ? rg.zeros([27]) : t]))), /shape mismatch: state\.0\.exp_avg: expected \[3, 1, 3, 3\], got \[27\]/);
  fresh.loadStateDict(state);
  assert.equal([...fresh.stateDict()].map(([k, t]) => [k, [...t.dataSync()]]), [...state].map(([k, t]) => [k, [...t.dataSync()]]), "a whole state loads");

  const net = optimiserNet();
  const scaleAmended = new rg.optim.ScaleAmendedSGD(net.parameters(), { lr: 0.1, model: net });
  scaleAmended.params[0].grad = rg.zeros(scaleAmended.params[0].shape);
  fails(() => scaleAmended.step(), /ScaleAmendedSGD: layer "0" has no statistics yet/);
});

test.run();
