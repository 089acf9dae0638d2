/**
 * Planning over a computation graph (Kusumoto et al. 2019's lower-set program): on small random
 * DAGs the program's optimum (fewest FLOPs within a budget, ties to the lower peak; and the
 * least peak) equals brute force over every chain of the family's lower sets, each segment
 * recomputed or recorded, costed by an evaluator written here from the model's definition; on a
 * chain, with the chain's cost model, it finds what the chain's dynamic program finds; budgets
 * below the least peak are refused naming it; a ResNet's graph opens its residual blocks (branch
 * and shortcut) so cuts inside a block are in the family; and plans run over the graph train to
 * the same bits as the model.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { uniform } from "../src/random.ts";
import type { ChainProfile, ComputationGraph, GraphPlan, LowerSet, SegmentModel } from "../src/memory/index.ts";
import { advance, finish, initialState } from "../src/memory/cost_model.ts";
import { dropoutNet, recordSteps, stripedGraphPlan } from "./support/replay.ts";
import { randomProfile } from "./support/chain_profiles.ts";

const R = rg.recompute;

/** A made-up DAG of n values (each reads one or two earlier ones or the input; every value but the last is read), from the seeded hash. */
function randomGraph(n: number, key: number): ComputationGraph {
  let i = 0;
  const r = (lo: number, hi: number) => Math.floor(lo + (hi - lo) * uniform(key, i++));
  const inputs: number[][] = Array.from({ length: n }, (_, v) => {
    const first = r(-1, v);
    const second = r(-1, v);
    return v > 0 && r(0, 2) === 1 && second !== first ? [first, second] : [first];
  });
  for (let u = 0; u < n - 1; u++) {
    if (!inputs.some((ins) => ins.includes(u))) inputs[r(u + 1, n)].push(u);
  }
  return {
    nodes: inputs.map((ins, v) => ({ name: `v${v}`, inputs: ins, outputBytes: r(1, 40) * 64, savedBytes: r(0, 3) * r(0, 30) * 64, flops: r(1, 1000) })),
    fixedBytes: r(0, 500) * 64, backend: "none", inputShape: [1],
  };
}

/** Every chain of `family` from ∅ to V, each segment recomputed or recorded. */
function allChains(family: readonly LowerSet[]): { cuts: number[]; recompute: boolean[] }[] {
  const out: { cuts: number[]; recompute: boolean[] }[] = [];
  const walk = (at: number, cuts: number[], recompute: boolean[]) => {
    if (at === family.length - 1) return void out.push({ cuts, recompute });
    for (let next = at + 1; next < family.length; next++) {
      const b = family[next], a = family[at];
      if (!(a.size < b.size && a.members.every((m, v) => !m || b.members[v]))) continue;
      for (const r of [false, true]) walk(next, [...cuts, next], [...recompute, r]);
    }
  };
  walk(0, [], []);
  return out;
}

/**
 * Kusumoto et al.'s time-centric cost of a chain, from the definition: before segment i the
 * boundary values of earlier recomputed segments and all of earlier recorded ones are held; while
 * its backward pass runs, also all of S_i with what its ops save, the values just outside L_i
 * that read it, and their other inputs outside L_i.
 */
function evaluate(graph: ComputationGraph, sets: LowerSet[], recompute: boolean[]) {
  const nodes = graph.nodes;
  const reads = (w: number, set: boolean[]) => nodes[w].inputs.some((u) => u >= 0 && set[u]);
  let kept = 0, peak = graph.fixedBytes, flops = 0;
  let before = nodes.map(() => false);
  sets.forEach((set, i) => {
    const L = set.members;
    const S = nodes.map((_, v) => L[v] && !before[v]);
    const plus = nodes.map((_, w) => !L[w] && reads(w, L));
    const others = nodes.map((_, u) => !L[u] && !plus[u] && nodes.some((_, w) => plus[w] && nodes[w].inputs.includes(u)));
    let transient = 0;
    nodes.forEach((node, v) => {
      if (S[v]) transient += node.outputBytes + node.savedBytes;
      if (plus[v] || others[v]) transient += node.outputBytes;
    });
    peak = Math.max(peak, graph.fixedBytes + kept + transient);
    nodes.forEach((node, v) => {
      if (!S[v]) return;
      if (!recompute[i]) kept += node.outputBytes + node.savedBytes;
      else if (nodes.some((w, k) => !L[k] && w.inputs.includes(v))) kept += node.outputBytes;
      if (recompute[i]) flops += node.flops;
    });
    before = L;
  });
  return { peak, flops };
}

function bruteForce(graph: ComputationGraph, budget: number) {
  const family = R.lowerSetFamily(graph);
  let flops = Infinity, peakAtFlops = Infinity, peak = Infinity;
  for (const chain of allChains(family)) {
    const e = evaluate(graph, chain.cuts.map((c) => family[c]), chain.recompute);
    peak = Math.min(peak, e.peak);
    if (e.peak > budget) continue;
    if (e.flops < flops || (e.flops === flops && e.peak < peakAtFlops)) [flops, peakAtFlops] = [e.flops, e.peak];
  }
  return { flops, peakAtFlops, peak };
}

test("the lower-set program matches brute force over every chain of the family (600 random DAGs of 2 to 7 values)", () => {
  let withInnerCuts = 0;
  for (let n = 2; n <= 7; n++) {
    for (let key = 0; key < 100; key++) {
      const graph = randomGraph(n, 7000 * n + key);
      const family = R.lowerSetFamily(graph);
      const model = R.kusumotoModel(graph);
      const least = R.leastPeak(family, model).peakBytes;
      const top = R.predictGraphPlan(graph, R.keepAllGraph(graph)).peakBytes;
      assert.is(least, bruteForce(graph, Infinity).peak, `n=${n} key=${key}: least peak`);
      for (const f of [0, 0.3, 0.7, 1]) {
        const budget = Math.round(least + f * (top - least));
        const expected = bruteForce(graph, budget);
        const chain = R.fewestFlops(family, model, budget)!;
        assert.is(chain.extraFlops, expected.flops, `n=${n} key=${key} f=${f}: fewest FLOPs`);
        assert.is(chain.peakBytes, expected.peakAtFlops, `n=${n} key=${key} f=${f}: its peak`);
        const plan = R.planOfChain(family, chain);
        assert.equal(R.predictGraphPlan(graph, plan), { peakBytes: chain.peakBytes, extraFlops: chain.extraFlops }, "the plan predicts what the program found");
      }
      const comparable = (a: LowerSet, b: LowerSet) => [a, b].some((x) => x.members.every((m, v) => !m || (x === a ? b : a).members[v]));
      if (family.some((a) => family.some((b) => !comparable(a, b)))) withInnerCuts++;
    }
  }
  assert.ok(withInnerCuts > 200, `many DAGs have branches (lower sets neither of which holds the other): ${withInnerCuts}`);
});

/** The chain's cost model (cost_model.ts) as a segment model over its prefixes: what the chain's program plans with. */
function chainModel(profile: ChainProfile): SegmentModel {
  return {
    start: () => ({ ...initialState(profile), tag: 0 }),
    effect(from, to, recompute, tag) {
      if (!recompute && to.size - from.size > 1) return null; // kept segments are one block each there
      const s = advance(profile, { position: from.size, held: 0, inputKeptBefore: tag === 1, peak: -Infinity, extraFlops: 0 }, { start: from.size, end: to.size, recompute });
      return { peakAbove: s.peak, heldDelta: s.held, flops: s.extraFlops, tag: s.inputKeptBefore ? 1 : 0 };
    },
    finish(state) {
      const s = finish(profile, { position: profile.blocks.length - 1, held: state.held, inputKeptBefore: state.tag === 1, peak: state.peak, extraFlops: state.extraFlops });
      return { held: s.held, peak: s.peak, extraFlops: s.extraFlops, tag: state.tag };
    },
  };
}

/** A chain of blocks as a graph (each block reads the one before). */
const pathGraph = (profile: ChainProfile): ComputationGraph => ({
  nodes: profile.blocks.slice(0, -1).map((b, k) => ({ name: b.name, inputs: [k - 1], outputBytes: b.outputBytes, savedBytes: b.keptBytes, flops: b.flops })),
  fixedBytes: profile.baseBytes, backend: profile.backend, inputShape: profile.inputShape,
});

test("on a chain, with the chain's cost model, the program finds the chain DP's optimum (same peak and FLOPs; 600 random chains and ResNet-20's)", () => {
  rg.manualSeed(61);
  const x = rg.randn([8, 1, 12, 12]);
  const measured = R.profileModel(rg.models.resnet20({ inChannels: 1, numClasses: 10 }), x, [0, 1, 2, 3, 4, 5, 6, 7]);
  x.dispose();
  const profiles = [measured, ...Array.from({ length: 600 }, (_, k) => randomProfile(2 + (k % 7), 9000 + k))];
  for (const [k, profile] of profiles.entries()) {
    const family = R.lowerSetFamily(pathGraph(profile));
    assert.is(family.length, profile.blocks.length, "a chain's lower sets are its prefixes: ∅ and one per block (the last is V)");
    const model = chainModel(profile);
    const smallest = R.smallestPeak(profile).peakBytes;
    assert.is(R.leastPeak(family, model).peakBytes, smallest, `profile ${k}: least peak`);
    const top = R.predict(profile, R.keepAll(profile)).peakBytes;
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const budget = Math.round(smallest + f * (top - smallest));
      const chain = R.fewestFlops(family, model, budget)!;
      const expected = R.predict(profile, R.optimalPlan(profile, budget)!);
      assert.equal({ peakBytes: chain.peakBytes, extraFlops: chain.extraFlops }, expected, `profile ${k} f=${f}`);
    }
  }
});

test("a budget below every plan's peak is refused, naming the smallest feasible budget", () => {
  const graph = randomGraph(7, 5);
  const smallest = R.leastPeak(R.lowerSetFamily(graph), R.kusumotoModel(graph)).peakBytes;
  assert.throws(() => R.chooseGraphPlan(graph, smallest - 1), (e: Error) =>
    e instanceof rg.MemoryBudgetError && e.smallestFeasibleBytes === smallest && e.budgetBytes === smallest - 1 &&
    /below the smallest feasible budget/.test(e.message) && e.message.includes(`${smallest} bytes`));
  const chosen = R.chooseGraphPlan(graph, smallest);
  assert.is(chosen.prediction.peakBytes, smallest);
  assert.is(chosen.smallestFeasibleBytes, smallest);
  assert.is(R.chooseGraphPlan(graph, chosen.keepAllPeakBytes).prediction.extraFlops, 0, "a budget that fits everything recomputes nothing");
  assert.throws(() => R.chooseGraphPlan(graph, 0), (e: Error) => e instanceof rg.ValueError && /budget must be > 0/.test(e.message));
  assert.throws(() => R.predictGraphPlan(graph, { segments: [{ nodes: [1, 0], recompute: true }] }), (e: Error) => e instanceof rg.ValueError);
});

const names = (model: rg.nn.Module) => R.opsOf(model).map((op) => op.name);

test("a ResNet's graph opens each residual block: branch, shortcut, join; cuts inside a block keep the block input too", () => {
  const model = rg.models.resnet18({ stem: "cifar", numClasses: 10, widthMultiplier: 0.125 });
  const ops = R.opsOf(model);
  const at = (name: string) => ops.findIndex((op) => op.name === name);
  assert.equal(names(model).slice(0, 12), [
    "stem.conv1", "stem.bn1+relu",
    "layer1.0.conv1", "layer1.0.bn1+relu", "layer1.0.conv2", "layer1.0.join",
    "layer1.1.conv1", "layer1.1.bn1+relu", "layer1.1.conv2", "layer1.1.join",
    "layer2.0.conv1", "layer2.0.bn1+relu",
  ]);
  assert.equal(ops[at("layer2.0.downsample.0")].inputs, [at("layer1.1.join")]);
  assert.equal(ops[at("layer2.0.join")].inputs, [at("layer2.0.conv2"), at("layer2.0.downsample.1")]);
  assert.equal(ops[at("layer1.1.join")].inputs, [at("layer1.1.conv2"), at("layer1.0.join")], "identity shortcut: the join reads the block input");
  assert.is(names(model).at(-1), "head");
  // The graph as measured: ancestor set of a branch node, and what crossing it keeps.
  rg.manualSeed(62);
  const x = rg.randn([2, 3, 8, 8]);
  const inUse = rg.memory().bytesInUse;
  const graph = R.profileModelGraph(model, x, [0, 1]);
  assert.is(rg.memory().bytesInUse, inUse, "profiling leaves nothing behind (no gradients)");
  assert.equal(model.parameters().map((p) => p.grad), model.parameters().map(() => null));
  x.dispose();
  assert.equal(graph.nodes.map((n) => n.name), names(model));
  const family = R.lowerSetFamily(graph);
  assert.is(family.length, graph.nodes.length + 1, "∅ and each node's ancestor set (all distinct here; the last is V)");
  const inner = R.ancestorSet(graph, at("layer1.1.bn1+relu"));
  const edge = R.boundary(R.successorsOf(graph), inner).flatMap((b, v) => (b ? [graph.nodes[v].name] : []));
  assert.equal(edge, ["layer1.0.join", "layer1.1.bn1+relu"]);
  const outputBytes = 4 * 2 * 8 * 8 * 8; // 8 channels at width 0.125
  assert.ok(graph.nodes[at("layer1.0.conv1")].outputBytes >= outputBytes && graph.nodes[at("layer1.0.conv1")].flops > 2 * 8 * 8 * 9 * 8 * 8 * 2);
  const bottleneck = rg.models.resnet50({ numClasses: 4, widthMultiplier: 0.0625 });
  assert.equal(names(bottleneck).slice(0, 13), [
    "stem.conv1", "stem.bn1+relu", "stem.maxpool",
    "layer1.0.conv1", "layer1.0.bn1+relu", "layer1.0.conv2", "layer1.0.bn2+relu", "layer1.0.conv3",
    "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0.join",
    "layer1.1.conv1", "layer1.1.bn1+relu",
  ]);
});

test("predicted peaks against measured ones (ResNet-20, CPU): the coarser model of values and saved tensors over-predicts these plans, by less than 15 %", () => {
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 10 });
  rg.manualSeed(66);
  const x = rg.randn([8, 1, 12, 12]);
  const labels = [0, 1, 2, 3, 4, 5, 6, 7];
  const graph = R.profileModelGraph(model, x, labels);
  const least = R.leastPeak(R.lowerSetFamily(graph), R.kusumotoModel(graph)).peakBytes;
  const top = R.predictGraphPlan(graph, R.keepAllGraph(graph)).peakBytes;
  const measured = (plan: GraphPlan) => rg.nn.frozenStats(model, () => {
    rg.getBackend().resetPeak();
    rg.tidy(() => rg.crossEntropy(new R.GraphPlannedModel(model, plan).forward(x), labels).backward());
    model.zeroGrad();
    return rg.memory().peakBytes;
  });
  const errors: string[] = [];
  // Not a bound in general (ResNet-50's least-peak plan measured 3 % over, docs/memory.md); here,
  // with what the model leaves out, it errs on the safe side for each of these plans.
  for (const f of [0, 0.5, 1]) {
    const chosen = R.chooseGraphPlan(graph, least + f * (top - least));
    const m = measured(chosen.plan);
    errors.push(`${f}: ${(100 * (m / chosen.prediction.peakBytes - 1)).toFixed(1)} %`);
    assert.ok(m <= chosen.prediction.peakBytes && m >= 0.85 * chosen.prediction.peakBytes, `budget at ${f}: measured ${m}, predicted ${chosen.prediction.peakBytes}`);
  }
  assert.ok(least < top, errors.join(", "));
  x.dispose();
});

test("plans over the graph train to the same bits: ResNet-20 (cuts inside blocks, several outputs per checkpoint), a bottleneck ResNet, a net with dropout", async () => {
  const resnet = { build: () => rg.models.resnet20({ inChannels: 1, numClasses: 4 }), inputShape: [4, 1, 12, 12], labels: [0, 1, 2, 3], steps: 3, seed: 63 };
  const bottleneck = { build: () => rg.models.resnet50({ inChannels: 1, numClasses: 4, widthMultiplier: 0.0625 }), inputShape: [2, 1, 32, 32], labels: [0, 3], steps: 2, seed: 64 };
  const dropout = { build: dropoutNet, inputShape: [6, 1, 8, 8], labels: [0, 1, 2, 3, 4, 0], steps: 3, seed: 65 };
  for (const [label, spec, size] of [["ResNet-20", resnet, 3], ["bottleneck ResNet", bottleneck, 4], ["dropout net", dropout, 1]] as const) {
    const count = R.opsOf(spec.build()).length;
    const plan = stripedGraphPlan(count, size);
    const expected = await recordSteps({ ...spec, forward: (m, x) => m.forward(x) });
    const actual = await recordSteps({ ...spec, forward: (m, x) => new R.GraphPlannedModel(m, plan).forward(x) });
    assert.equal(actual, expected, label);
  }
  // One segment's checkpoint hands on two values: ResNet-20's layer1.1 cut after bn1+relu keeps its input too.
  const model = resnet.build();
  const ops = R.opsOf(model);
  const cut = ops.findIndex((op) => op.name === "layer1.1.bn1+relu");
  const plan: GraphPlan = { segments: [{ nodes: Array.from({ length: cut + 1 }, (_, v) => v), recompute: true }, { nodes: Array.from({ length: ops.length - cut - 1 }, (_, i) => cut + 1 + i), recompute: false }] };
  const expected = await recordSteps({ ...resnet, forward: (m, x) => m.forward(x) });
  assert.equal(await recordSteps({ ...resnet, forward: (m, x) => new R.GraphPlannedModel(m, plan).forward(x) }), expected, "a checkpoint with two outputs");
  assert.throws(() => new R.GraphPlannedModel(model, { segments: [{ nodes: [1, 0], recompute: true }] }), (e: Error) => e instanceof rg.ValueError && /increasing order/.test(e.message));
  assert.throws(() => new R.GraphPlannedModel(model, { segments: [{ nodes: [0, 1], recompute: true }] }), (e: Error) => e instanceof rg.ValueError && /node 2 \(layer1\.0\.conv1\) is in no segment/.test(e.message));
});

test.run();
