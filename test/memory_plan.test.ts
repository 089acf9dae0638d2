/**
 * Memory planning: the cost model predicts the measured peak of a training step exactly on the
 * CPU backend (ResNet-20, a convnet with dropout; several plans each); the dynamic program finds
 * the plan with the fewest added FLOPs under a budget, and the least feasible peak, as brute
 * force over every single-level plan does (small chains, random and measured); Chen's √n and
 * greedy plans; a budget below every plan's peak is refused naming the smallest feasible one;
 * a PlannedModel trains to the same bits as the model.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import type { ChainProfile, Plan, Segment } from "../src/memory/index.ts";
import { dropoutNet, recordSteps } from "./support/replay.ts";
import { randomProfile } from "./support/chain_profiles.ts";

const R = rg.recompute;

/** Every single-level plan of n blocks (kept blocks one segment each, recomputed runs of any length). */
function allPlans(n: number): Plan[] {
  const out: Plan[] = [];
  const walk = (pos: number, segments: Segment[]) => {
    if (pos === n) return void out.push({ segments: [...segments] });
    walk(pos + 1, [...segments, { start: pos, end: pos + 1, recompute: false }]);
    for (let end = pos + 1; end <= n; end++) walk(end, [...segments, { start: pos, end, recompute: true }]);
  };
  walk(0, []);
  return out;
}

/** Brute force: the least FLOPs of a plan within `budget` (Infinity if none) and the least peak of any plan. */
function bruteForce(profile: ChainProfile, budget: number) {
  let flops = Infinity, peak = Infinity;
  for (const plan of allPlans(profile.blocks.length - 1)) {
    const p = R.predict(profile, plan);
    peak = Math.min(peak, p.peakBytes);
    if (p.peakBytes <= budget) flops = Math.min(flops, p.extraFlops);
  }
  return { flops, peak };
}

function assertOptimal(profile: ChainProfile, label: string) {
  const smallest = R.smallestPeak(profile);
  const top = R.predict(profile, R.keepAll(profile)).peakBytes;
  assert.is(smallest.peakBytes, bruteForce(profile, Infinity).peak, `${label}: least feasible peak`);
  assert.is(R.predict(profile, smallest.plan).peakBytes, smallest.peakBytes, `${label}: the least-peak plan reaches it`);
  for (const f of [0, 0.1, 0.25, 0.5, 0.75, 1]) {
    const budget = Math.round(smallest.peakBytes + f * (top - smallest.peakBytes));
    const plan = R.optimalPlan(profile, budget)!;
    const p = R.predict(profile, plan);
    assert.ok(p.peakBytes <= budget, `${label}: the plan fits budget ${budget}`);
    assert.is(p.extraFlops, bruteForce(profile, budget).flops, `${label}, budget ${budget}: fewest FLOPs`);
    const greedy = R.greedyPlan(profile, budget);
    if (greedy) assert.ok(R.predict(profile, greedy).peakBytes <= budget && R.predict(profile, greedy).extraFlops >= p.extraFlops, `${label}: greedy fits and adds no less`);
  }
  assert.is(R.optimalPlan(profile, smallest.peakBytes - 1), null, `${label}: nothing below the least peak`);
}

test("the dynamic program matches brute force over every single-level plan (1400 random chains of 2 to 8 blocks)", () => {
  assert.is(allPlans(4).length, 34, "F(9) plans of 4 blocks");
  for (let n = 2; n <= 8; n++) for (let key = 0; key < 200; key++) assertOptimal(randomProfile(n, 1000 * n + key), `n=${n} key=${key}`);
});

/** One training step's measured peak (statistics frozen, gradients dropped). */
function measuredPeak(model: rg.nn.Module, plan: Plan, x: rg.Tensor, labels: number[]): number {
  const planned = new R.PlannedModel(model, plan);
  return rg.nn.frozenStats(model, () => {
    rg.getBackend().resetPeak();
    rg.tidy(() => rg.crossEntropy(planned.forward(x), labels).backward());
    const peak = rg.memory().peakBytes;
    model.zeroGrad();
    return peak;
  });
}

test("predicted peaks equal the measured ones (CPU), and the DP matches brute force on measured chains", () => {
  for (const [label, model, shape] of [
    ["ResNet-20", rg.models.resnet20({ inChannels: 1, numClasses: 10 }), [8, 1, 12, 12]],
    ["dropout net", dropoutNet(), [8, 1, 8, 8]],
  ] as const) {
    rg.manualSeed(51);
    const x = rg.randn(shape);
    const labels = [0, 1, 2, 3, 4, 0, 1, 2];
    const profile = R.profileModel(model, x, labels);
    const smallest = R.smallestPeak(profile);
    const top = R.predict(profile, R.keepAll(profile)).peakBytes;
    const budget = (smallest.peakBytes + top) / 2;
    const plans: [string, Plan][] = [
      ["none", R.keepAll(profile)], ["√n", R.sqrtPlan(profile)], ["least peak", smallest.plan],
      ["optimal", R.optimalPlan(profile, budget)!], ["greedy", R.greedyPlan(profile, budget) ?? R.sqrtPlan(profile)],
      ["all recomputed", { segments: [{ start: 0, end: profile.blocks.length - 1, recompute: true }] }],
    ];
    for (const [name, plan] of plans) {
      assert.is(measuredPeak(model, plan, x, labels), R.predict(profile, plan).peakBytes, `${label}, ${name}: measured = predicted`);
    }
    assert.ok(smallest.peakBytes < top, `${label}: recomputation lowers the peak`);
    assertOptimal(profile, label);
  }
});

test("√n and greedy plans: Chen et al.'s segments", () => {
  const profile = randomProfile(9, 7);
  assert.equal(R.sqrtPlan(profile).segments.map((s) => [s.start, s.end, s.recompute]), [[0, 3, true], [3, 6, true], [6, 7, false], [7, 8, false], [8, 9, false]]);
  const each = R.greedyAt(profile, 0).segments;
  assert.equal(each.map((s) => [s.start, s.end, s.recompute]), [...Array.from({ length: 8 }, (_, i) => [i, i + 1, true]), [8, 9, false]], "threshold 0: every block a checkpoint, the last kept");
  assert.equal(R.greedyAt(profile, Infinity).segments.every((s) => !s.recompute), true, "no threshold passed: nothing recomputed");
  const sizes = profile.blocks.map((b) => b.keptBytes + b.outputBytes);
  const threshold = sizes[0] + sizes[1] + 1;
  assert.equal(R.greedyAt(profile, threshold).segments[0], { start: 0, end: 3, recompute: true }, "a segment ends at the block where the sum passes the threshold");
});

test("a budget below every plan's peak is refused, naming the smallest feasible budget", () => {
  const profile = randomProfile(6, 3);
  const smallest = R.smallestPeak(profile).peakBytes;
  for (const method of ["optimal", "greedy", "sqrt", "none"] as const) {
    assert.throws(() => R.choosePlan(profile, method, smallest - 1), (e: Error) =>
      e instanceof rg.MemoryBudgetError && e.smallestFeasibleBytes === smallest &&
      /below the smallest feasible budget/.test(e.message) && e.message.includes(`${smallest} bytes`));
  }
  // A budget some plan meets but not the method's: refused too, naming what would do.
  const sqrtPeak = R.predict(profile, R.sqrtPlan(profile)).peakBytes;
  assert.ok(sqrtPeak > smallest);
  assert.throws(() => R.choosePlan(profile, "sqrt", sqrtPeak - 1), (e: Error) =>
    e instanceof rg.MemoryBudgetError && /the sqrt plan needs/.test(e.message) && e.message.includes(`${smallest} bytes`));
  const chosen = R.choosePlan(profile, "optimal", smallest);
  assert.is(chosen.prediction.peakBytes, smallest);
  const top = R.predict(profile, R.keepAll(profile)).peakBytes;
  assert.is(R.choosePlan(profile, "optimal", top).prediction.extraFlops, 0, "a budget that fits everything recomputes nothing");
  assert.throws(() => R.choosePlan(profile, "optimal", null), (e: Error) => e instanceof rg.ValueError && /needs a budget/.test(e.message));
  const summary = R.summarizePlan(chosen, profile);
  assert.match(R.describePlan(summary), /predicted peak .* smallest feasible/);
});

test("PlannedModel trains to the same bits as the model; evaluation runs the plain forward", async () => {
  const spec = { build: () => rg.models.resnet20({ inChannels: 1, numClasses: 4 }), inputShape: [4, 1, 12, 12], labels: [0, 1, 2, 3], steps: 2, seed: 52 };
  const plan: Plan = { segments: [{ start: 0, end: 4, recompute: true }, { start: 4, end: 5, recompute: false }, { start: 5, end: 11, recompute: true }] };
  const expected = await recordSteps({ ...spec, forward: (m, x) => m.forward(x) });
  const actual = await recordSteps({ ...spec, forward: (m, x) => new R.PlannedModel(m, plan).forward(x) });
  assert.equal(actual, expected);
  const model = spec.build();
  const planned = new R.PlannedModel(model, plan);
  assert.equal([...planned.stateDict().keys()], [...model.stateDict().keys()], "the model's own state-dict names");
  assert.throws(() => new R.PlannedModel(model, { segments: [{ start: 0, end: 3, recompute: true }] }), /cover blocks \[0, 3\) of 11/);
});

test.run();
