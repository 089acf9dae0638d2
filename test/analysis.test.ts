/**
 * The PowerGrad paper's measures (src/analysis/) against a PyTorch/numpy reimplementation
 * (test/fixtures/gen_fixtures.py, analysis.safetensors): the four logit statistics of given
 * logits and of a model's eval-mode logits, and the per-filter norms and zeroed counts of every
 * conv of a ResNet-20 without BatchNorm at width 0.125 with a few filters shrunk on purpose.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose, loadFixture } from "./helpers.ts";

const fx = loadFixture("analysis.safetensors");
const { LogitStatsSum, logitStats, modelFilterNorms, countZeroed, median, ZEROED_FRACTION } = rg.analysis;

const asArray = (s: rg.analysis.LogitStats) => [s.norm, s.absMean, s.absMax, s.variance];

test("logit statistics: mean ‖z‖₂, |mean z|, |max z| and var z match PyTorch, whatever the batching", async () => {
  const z = fx.get("z");
  const whole = await logitStats(z);
  assert.is(whole.samples, 9);
  assertClose(asArray(whole), fx.get("z.stats"), "LStat", { rtol: 1e-6, atol: 0 });
  // Summed batch by batch (4 + 5 samples), the same bits as in one go.
  const values = z.dataSync();
  const sums = new LogitStatsSum();
  sums.add(values.subarray(0, 40), 10);
  sums.add(values.subarray(40), 10);
  assert.equal(asArray(sums.result()), asArray(whole));
});

test("logit statistics of a model's eval-mode logits match PyTorch's", async () => {
  const model = narrowModel();
  const logits = rg.noGrad(() => model.eval().forward(fx.get("x")));
  assertClose(logits, fx.get("model.logits"), "logits", { rtol: 1e-4, atol: 1e-5 });
  assertClose(asArray(await logitStats(logits)), fx.get("model.logits.stats"), "LStat", { rtol: 1e-4, atol: 0 });
  model.dispose();
});

test("bad logits are a ShapeError naming the shape", async () => {
  assert.throws(() => new LogitStatsSum().add(new Float32Array(7), 2), (e: Error) => e instanceof rg.ShapeError && /7 values for 2 classes/.test(e.message));
  await logitStats(rg.zeros([2, 3, 4])).then(() => assert.unreachable(), (e: Error) => {
    assert.ok(e instanceof rg.ShapeError && /\[2, 3, 4\]/.test(e.message), e.message);
  });
  assert.ok(Number.isNaN(new LogitStatsSum().result().norm), "no samples: no mean");
});

function narrowModel(): rg.nn.Module {
  const model = rg.models.createModel("resnet20-nonorm", { inChannels: 1, numClasses: 10, imageSize: 12, widthMultiplier: 0.125 });
  const prefix = "model.";
  model.loadStateDict(new Map(fx.keys().filter((k) => k.startsWith(prefix) && k !== "model.logits" && k !== "model.logits.stats")
    .map((k) => [k.slice(prefix.length), fx.get(k)])));
  return model;
}

test("filter norms of every conv (classifier excluded) and the zeroed counts match PyTorch/numpy", async () => {
  assert.is(ZEROED_FRACTION, Number(fx.meta("zeroed_fraction")), "the fixture counts at our threshold");
  const model = narrowModel();
  const layers = await modelFilterNorms(model);
  assert.equal(layers.map((l) => l.name), fx.meta("layers"), "the same layers in the same order");
  const expectedZeroed = fx.meta("zeroed") as Record<string, number>;
  for (const { name, norms } of layers) {
    assertClose(norms, fx.get(`norms.${name}`), `norms of ${name}`, { rtol: 1e-6, atol: 0 });
    assert.is(countZeroed(norms), expectedZeroed[name], `zeroed in ${name}`);
  }
  // The shrunk filters: 0.01×, 0.001× and 0× count; 0.2× does not.
  assert.equal(Object.entries(expectedZeroed).filter(([, n]) => n > 0).map(([k]) => k).sort(),
    ["layer1.2.conv2", "layer2.0.downsample.0", "layer3.1.conv1"]);
  model.dispose();
});

test("median: the middle value, or the mean of the middle two", () => {
  assert.is(median([5, 1, 3]), 3);
  assert.is(median([4, 1, 3, 10]), 3.5);
  assert.is(countZeroed([1, 1, 1, 0.049], 0.05), 1);
  assert.is(countZeroed([1, 1, 1, 0.05], 0.05), 0);
});

test.run();
