/**
 * The probes of the backward pass (src/analysis/) against a PyTorch reimplementation
 * (test/fixtures/gen_fixtures.py gen_probes, probes.safetensors) on a small network with
 * BatchNorm (test/support/probe_net.ts), one batch of 4, in training mode, W^{t+1} = W^t − 0.1·∇L.
 * The references are float64 from the same float32 inputs; the tolerances below say how far float32 may drift. Then: probes leave the
 * model, its buffers, the random stream, `.grad` and memory as they were; the ℓp normalisation
 * layers against PyTorch; and the BatchNorm noise's distribution.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";
import { probeFixture, probeFixtureStep, probeLr, probeNet, probeParamNames } from "./support/probe_net.ts";

const fx = probeFixture;
const names = probeParamNames;
const lr = probeLr;
const fixtureStep = (model: rg.nn.Module) => probeFixtureStep(model);

async function measure(probe: rg.analysis.ProbeName, options: rg.analysis.ProbeOptions = {}) {
  const model = probeNet();
  const step = fixtureStep(model);
  const [record] = await new rg.analysis.Prober(new Map([[probe, 1]]), options).measure(step);
  rg.analysis.disposeParams(step.before);
  model.dispose();
  return record as Record<string, unknown>;
}

const rows = (name: string) => {
  const t = fx.get(name);
  const v = t.dataSync();
  return Array.from({ length: t.shape[0] }, (_, i) => [...v.subarray(i * t.shape[1], (i + 1) * t.shape[1])]);
};

test("gradient at W^t: the loss and every parameter's gradient match PyTorch", async () => {
  const model = probeNet();
  const ctx = new rg.analysis.StepContext(fixtureStep(model));
  const { loss, grads } = await ctx.gradient();
  assertClose([loss], fx.get("loss"), "loss", { rtol: 1e-6, atol: 0 });
  for (const n of names) assertClose(grads.get(n)!, fx.get(`grad.${n}`), `grad ${n}`, { rtol: 1e-4, atol: 1e-6 });
  await ctx.dispose();
  rg.analysis.disposeParams(ctx.step.before);
  model.dispose();
});

test("layers: ‖W‖, ‖∇L‖ and ‖ΔW‖/‖W‖ per parameter tensor match PyTorch", async () => {
  const { layers } = await measure("layers") as { layers: rg.analysis.ParameterStats[] };
  assert.equal(layers.map((l) => l.name), names);
  const expected = rows("layers");
  // A conv's bias before BatchNorm has no gradient (BatchNorm subtracts it again): float32 leaves ~1e-8 of noise.
  layers.forEach((l, i) => assertClose([l.weightNorm, l.gradNorm, l.updateRatio], expected[i], l.name, { rtol: 1e-5, atol: 1e-7 }));
});

test("activations: moments, quantiles and histogram of the BatchNorm outputs match PyTorch", async () => {
  const { layers } = await measure("activations") as { layers: rg.analysis.ActivationStats[] };
  assert.equal(layers.map((l) => l.name), ["1", "4"], "the default layers: every normalisation layer");
  assert.equal([...rg.analysis.QUANTILE_LEVELS], fx.meta("quantiles"));
  for (const l of layers) {
    assertClose([l.mean, l.std, l.min, l.max], fx.get(`act.${l.name}.summary`), `${l.name} moments`, { rtol: 1e-5, atol: 1e-6 });
    assertClose(l.quantiles, fx.get(`act.${l.name}.quantiles`), `${l.name} quantiles`, { rtol: 1e-5, atol: 1e-6 });
    // Float32 and float64 values may straddle a bin edge: a value or two may move to a neighbour.
    const expected = fx.get(`act.${l.name}.histogram`).dataSync();
    const moved = l.histogram.reduce((s, c, i) => s + Math.abs(c - expected[i]), 0);
    assert.ok(moved <= 2, `${l.name} histogram: ${moved / 2} values in other bins`);
    assert.is(l.count, expected.reduce((a, b) => a + b, 0));
  }
});

test("ics: ‖G − G′‖₂ and cos(G, G′) per layer match PyTorch (the first layer: none)", async () => {
  const { layers } = await measure("ics") as { layers: rg.analysis.LayerShift[] };
  assert.equal(layers.map((l) => l.name), ["0", "3", "8"]);
  const expected = rows("ics");
  layers.forEach((l, i) => assertClose([l.gradNorm, l.shift, l.cosine], expected[i], `layer ${l.name}`, { rtol: 1e-4, atol: 1e-7 }));
  assert.is(layers[0].shift, 0, "nothing below the first layer");
});

test("landscape: L and ‖g − g′‖ along the gradient, loss variation, gradient predictiveness, effective β match PyTorch", async () => {
  const r = await measure("landscape") as unknown as rg.analysis.LandscapeMeasures;
  assertClose(r.stepSizes, (fx.meta("multipliers") as unknown as number[]).map((m) => m * lr), "step sizes", { rtol: 1e-12, atol: 0 });
  assertClose(r.losses, fx.get("landscape.losses"), "losses", { rtol: 1e-5, atol: 0 });
  assertClose(r.gradientChanges, fx.get("landscape.changes"), "gradient changes", { rtol: 1e-4, atol: 1e-7 });
  assertClose([r.lossVariation, r.gradientPredictiveness, r.effectiveBetaSmoothness], fx.get("landscape.summary"), "summary", { rtol: 1e-4, atol: 1e-7 });
});

test("curvature: a Hessian-vector product, the top eigenvalue and the trace against PyTorch's exact Hessian", async () => {
  const model = probeNet();
  const step = fixtureStep(model);
  const ctx = new rg.analysis.StepContext(step);
  const v = new Map(names.map((n) => [n, fx.get(`hvp.v.${n}`)]));
  const hv = await rg.analysis.hessianVectorProduct(ctx.objective, step.before, v, 1e-2);
  for (const n of names) assertClose(hv.get(n)!, fx.get(`hvp.hv.${n}`), `Hv ${n}`, { rtol: 1e-3, atol: 1e-4 });
  rg.analysis.disposeParams(hv);
  const [top, trace, second] = fx.get("hessian").dataSync();
  // Eigengap |λ₂|/|λ₁| ≈ 0.75: the Rayleigh quotient's error falls as 0.75^2k.
  const eig = await rg.analysis.topEigenvalue(ctx.objective, step.before, ctx.stream(1), { iterations: 80, tolerance: 1e-7 });
  assert.ok(Math.abs(second) < Math.abs(top));
  assertClose([eig.value], [top], "top eigenvalue", { rtol: 2e-3, atol: 0 });
  const estimate = await rg.analysis.hutchinsonTrace(ctx.objective, step.before, ctx.stream(2), { samples: 200 });
  assert.ok(Math.abs(estimate.value - trace) <= 4 * estimate.standardError,
    `trace ${estimate.value} ± ${estimate.standardError} (200 samples), exact ${trace}`);
  assert.ok(estimate.standardError < 0.2 * trace, `standard error ${estimate.standardError} is small against ${trace}`);
  // The probe's record, with the default settings.
  const record = await new rg.analysis.Prober(new Map([["curvature", 1]]), { curvature: { iterations: 60 } }).measure(step);
  assertClose([record[0].topEigenvalue as number], [top], "the probe's top eigenvalue", { rtol: 5e-3, atol: 0 });
  await ctx.dispose();
  rg.analysis.disposeParams(step.before);
  model.dispose();
});

test("logits and filters: the batch's LStat and the filter norms at W^t match PyTorch", async () => {
  const logits = await measure("logits");
  assertClose([logits.norm, logits.absMean, logits.absMax, logits.variance] as number[], fx.get("logits.stats"), "LStat", { rtol: 1e-5, atol: 1e-7 });
  const { layers, zeroed } = await measure("filters") as { zeroed: number; layers: { name: string; norms: number[]; zeroed: number }[] };
  assert.equal(layers.map((l) => l.name), ["0", "3"], "every conv, the classifier excluded");
  for (const l of layers) assertClose(l.norms, fx.get(`filters.${l.name}`), `filters of ${l.name}`, { rtol: 1e-6, atol: 0 });
  assert.is(zeroed, 0);
});

test("probes change nothing: weights, BatchNorm buffers, the random stream, .grad and memory stay as they were", async () => {
  const model = probeNet();
  const step = fixtureStep(model);
  for (const p of model.parameters()) p.grad = rg.full(p.shape, 0.5);
  rg.manualSeed(3);
  rg.randn([5]).dispose(); // the stream somewhere in the middle
  const stream = rg.getRandomState();
  const state = () => [...model.stateDict()].map(([k, t]) => [k, [...t.dataSync()]]);
  const grads = () => model.parameters().map((p) => [...p.grad!.dataSync()]);
  const [stateBefore, gradsBefore] = [state(), grads()];
  const bytes = rg.memory().bytesInUse;
  const records = await new rg.analysis.Prober(rg.analysis.parseProbeSpec("all", 1), { curvature: { iterations: 3, samples: 2 } }).measure(step);
  assert.equal(records.map((r) => r.probe), [...rg.analysis.PROBE_NAMES]);
  assert.is(rg.memory().bytesInUse, bytes, "every tensor a probe made is freed");
  assert.equal(state(), stateBefore, "weights, running statistics and num_batches_tracked");
  assert.equal(grads(), gradsBefore, ".grad");
  assert.equal(rg.getRandomState(), stream, "the random stream");
  rg.analysis.disposeParams(step.before);
  model.dispose();
});

test("probe lists: names, @k periods and 'all'; bad entries are ValueErrors naming them", () => {
  const { parseProbeSpec } = rg.analysis;
  assert.equal([...parseProbeSpec("ics, landscape@20", 5)], [["ics", 5], ["landscape", 20]]);
  assert.is(parseProbeSpec("all@7", 5).size, rg.analysis.PROBE_NAMES.length);
  for (const [bad, pattern] of [["icss", /unknown probe "icss"/], ["ics@0", /"ics@0": the period/], ["ics@x", /period/], [",", /no probes/]] as const) {
    assert.throws(() => parseProbeSpec(bad, 5), (e: Error) => e instanceof rg.ValueError && pattern.test(e.message), bad);
  }
  const prober = new rg.analysis.Prober(parseProbeSpec("ics@2,curvature@3", 1));
  assert.equal([1, 2, 3, 4, 6].map((s) => prober.dueAt(s)), [[], ["ics"], ["curvature"], ["ics"], ["ics", "curvature"]]);
});

test("ℓ1/ℓ2/ℓ∞ normalisation: forward and backward match PyTorch; ℓ2 is BatchNorm's training-mode normalisation", () => {
  for (const [name, p] of [["l1", 1], ["l2", 2], ["linf", Infinity]] as const) {
    const layer = new rg.nn.LpNorm2d(3, p);
    layer.weight.copy_(fx.get(`lpnorm.${name}.weight`));
    layer.bias.copy_(fx.get(`lpnorm.${name}.bias`));
    const x = rg.tensor(fx.get(`lpnorm.${name}.x`).dataSync(), [4, 3, 5, 5]).requireGrad();
    const y = layer.forward(x);
    assertClose(y, fx.get(`lpnorm.${name}.y`), `${name} forward`, { rtol: 1e-5, atol: 1e-5 });
    y.backward(fx.get(`lpnorm.${name}.dy`));
    assertClose(x.grad!, fx.get(`lpnorm.${name}.dx`), `${name} dx`, { rtol: 1e-4, atol: 1e-5 });
    assertClose(layer.weight.grad!, fx.get(`lpnorm.${name}.dweight`), `${name} dγ`, { rtol: 1e-4, atol: 1e-5 });
    assertClose(layer.bias.grad!, fx.get(`lpnorm.${name}.dbias`), `${name} dβ`, { rtol: 1e-4, atol: 1e-5 });
    layer.dispose();
  }
  const x = fx.get("lpnorm.l2.x");
  const bn = new rg.nn.BatchNorm2d(3, { trackRunningStats: false });
  assertClose(new rg.nn.LpNorm2d(3, 2).forward(x), bn.forward(x), "ℓ2 = BatchNorm", { rtol: 1e-5, atol: 1e-6 });
  assert.throws(() => new rg.nn.LpNorm2d(3, 3 as 2), (e: Error) => e instanceof rg.ValueError && /p must be 1, 2 or Infinity, got 3/.test(e.message));
  assert.throws(() => new rg.nn.LpNorm2d(3, 1).forward(rg.zeros([2, 4, 3, 3])), (e: Error) => e instanceof rg.ShapeError && /\[2, 4, 3, 3\]/.test(e.message));
});

test("noisy BatchNorm: per step μ ~ U(−½, ½), σ ~ U(1, 1¼); per activation m ~ U(μ ± 0.1), s ~ N(σ, 0.1); none in evaluation", async () => {
  // γ = 0 makes BatchNorm's output β everywhere, so the noisy output is s·β + m.
  const model = new rg.nn.Sequential(new rg.nn.BatchNorm2d(2));
  const bn = model.getModule("0") as rg.nn.BatchNorm2d;
  bn.weight.fill_(0);
  const handle = rg.nn.addBatchNormNoise(model);
  const x = rg.randn([16, 2, 8, 8]);
  const sample = (beta: number) => {
    bn.bias.fill_(beta);
    return rg.noGrad(() => model.forward(x)).dataSync();
  };
  const stats = (v: Float32Array) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length), min: Math.min(...v), max: Math.max(...v) };
  };
  const means: number[] = [];
  for (let k = 0; k < 20; k++) {
    const shift = stats(sample(0)); // m alone: inside one interval of width 0.2 within [−0.6, 0.6]
    assert.ok(shift.max - shift.min <= 0.2 + 1e-6 && shift.min >= -0.6 && shift.max <= 0.6, JSON.stringify(shift));
    assertClose([shift.std], [0.2 / Math.sqrt(12)], "std of m", { rtol: 0.08, atol: 0 });
    means.push(shift.mean);
    const both = stats(sample(1)); // s + m: mean σ + μ in [0.5, 1.75], std √(0.1² + 0.2²/12)
    assert.ok(both.mean > 0.5 && both.mean < 1.75, `mean ${both.mean}`);
    assertClose([both.std], [Math.sqrt(0.01 + 0.04 / 12)], "std of s + m", { rtol: 0.08, atol: 0 });
  }
  assert.ok(Math.max(...means) - Math.min(...means) > 0.3, "μ changes from step to step");
  model.eval();
  assert.equal([...new Set(sample(0.25))], [0.25], "no noise in evaluation");
  handle.remove();
  model.train();
  assert.equal([...new Set(sample(0.25))], [0.25], "removed");
  assert.throws(() => rg.nn.addBatchNormNoise(new rg.nn.Sequential(new rg.nn.ReLU())), (e: Error) => e instanceof rg.ValueError && /no BatchNorm/.test(e.message));
  const noisy = rg.models.createModel("vgg11-bn", { inChannels: 1, numClasses: 10, imageSize: 28, widthMultiplier: 0.0625, noisyBatchNorm: true });
  assert.ok([...noisy.namedModules()].filter(([, m]) => m instanceof rg.nn.BatchNorm2d).every(([, m]) => m.hasHooks), "every BatchNorm of a noisy model");
  noisy.dispose();
});

test("VGG for 28×28 images: the final max-pool is left out, the keys stay torchvision's; ℓp variants by name", () => {
  const spec = { inChannels: 1, numClasses: 10, imageSize: 28, widthMultiplier: 0.0625 };
  const model = rg.models.createModel("vgg11-bn", spec);
  const logits = rg.noGrad(() => model.forward(rg.randn([2, 1, 28, 28])));
  assert.equal([...logits.shape], [2, 10]);
  assert.ok(model.stateDict().has("features.26.running_var"), "the last conv's BatchNorm keeps its index");
  const l1 = rg.models.createModel("vgg11-l1", spec);
  assert.ok(l1.getModule("features.1") instanceof rg.nn.LpNorm2d);
  assert.not.ok([...l1.stateDict().keys()].some((k) => k.includes("running")), "ℓp normalisation keeps no running statistics");
  assert.throws(() => rg.models.vgg11({ normalization: "group" as "batch" }), (e: Error) => e instanceof rg.ValueError && /normalization must be one of/.test(e.message));
  for (const m of [model, l1]) m.dispose();
});

test.run();
