/**
 * Recomputation under a memory budget, measured: for one model and batch, the peak of a
 * training step (rg.memory().peakBytes after resetPeak: forward, loss, backward, an SGD step
 * with momentum) and its time, for no recomputation, Chen's √n plan, and the greedy plan and the
 * exact dynamic program at several budgets, beside each plan's predicted peak and the forward
 * FLOPs it adds. Budgets are given as fractions of the way from the smallest feasible peak (0)
 * to the peak without recomputation (1). The plans' steps are interleaved, `--repeats` rounds
 * of them after a warm-up round, and times are medians: the machine may be shared (the load
 * average before and after is recorded with them). JSON on stdout, a markdown table on stderr.
 *
 *   deno run -A bench/memory.ts --model resnet18 --batch 64 --size 32 [--threads 1]
 *     [--budgets 0,0.25,0.5,0.75] [--repeats 3] [--only-plans]
 *
 * `--largest-batch BYTES[,BYTES...] --batches 64,128`: no timing; profile at those two batches,
 * extrapolate each figure linearly to the largest batch whose least feasible peak (and whose
 * peak without recomputation) fits each limit, and print those batches with their plans.
 * `--step-with PLAN.json --batch N` then trains two steps at batch N through the plan (a JSON
 * file with `segments`), in a fresh process, and reports the second step's peak, the wasm
 * memory's size and whether it trained.
 *
 * `--graph --budget-bytes B1,B2,…`: no timing; each budget (in bytes: those of the tables
 * above) planned by Kusumoto et al.'s lower-set program over the model's graph of ops
 * (rg.recompute.chooseGraphPlan), and also the graph model's own least peak; for each, the
 * predicted peak, the FLOPs added and the measured peak of one step, after a warm-up step.
 */
import { loadavg } from "node:os";
import * as rg from "../src/mod.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import type { ChainProfile, Plan } from "../src/memory/index.ts";

const R = rg.recompute;
const args = typeof process !== "undefined" ? process.argv.slice(2) : [];
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const MiB = 2 ** 20;
const mib = (b: number) => (b / MiB).toFixed(1);

const modelName = arg("model", "resnet18");
const size = Number(arg("size", "32"));
const threads = Number(arg("threads", "1"));
const repeats = Number(arg("repeats", "3"));

function build(): rg.nn.Module {
  rg.manualSeed(0);
  if (modelName === "resnet18") return rg.models.resnet18({ numClasses: 10, stem: "cifar" });
  if (modelName === "resnet50") return rg.models.resnet50({ numClasses: 1000 });
  throw new Error(`--model: resnet18 (CIFAR stem) or resnet50, got ${modelName}`);
}

/** A model, a batch, labels, an SGD with momentum, and the momentum bytes it will add. */
function setUp(batch: number) {
  const model = build();
  const x = rg.withRandomState(1, () => rg.randn([batch, 3, size, size]));
  const classes = modelName === "resnet50" ? 1000 : 10;
  const labels = Array.from({ length: batch }, (_, i) => (i * 7) % classes);
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const before = rg.memory().bytesInUse;
  const copies = model.parameters().map((p) => rg.zeros(p.shape));
  const momentumBytes = rg.memory().bytesInUse - before;
  for (const c of copies) c.dispose();
  return { model, x, labels, opt, momentumBytes };
}

type Setup = ReturnType<typeof setUp>;

/** One training step through `plan` (a chain plan, or `planned`: a model wrapped in any plan); its peak and seconds. */
function step(s: Setup, plan: Plan | null, planned: rg.nn.Module = new R.PlannedModel(s.model, plan!)): { peak: number; seconds: number } {
  const backend = rg.getBackend();
  backend.resetPeak();
  const t0 = performance.now();
  rg.tidy(() => {
    s.opt.zeroGrad();
    rg.crossEntropy(planned.forward(s.x), s.labels).backward();
    s.opt.step();
  });
  return { peak: backend.memory().peakBytes, seconds: (performance.now() - t0) / 1000 };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

interface Row {
  method: string;
  budgetFraction: number | null;
  budgetBytes: number | null;
  predictedPeakBytes: number;
  measuredPeakBytes: number[];
  extraForwardFlops: number;
  recomputedSegments: number;
  seconds: number[];
}

/** The plans to compare: none, √n, and greedy and optimal at each budget fraction. */
function plansFor(profile: ChainProfile, fractions: number[]): Omit<Row, "measuredPeakBytes" | "seconds">[] {
  const smallest = R.smallestPeak(profile).peakBytes;
  const top = R.predict(profile, R.keepAll(profile)).peakBytes;
  const row = (method: string, fraction: number | null, budget: number | null, plan: Plan | null) => plan && {
    method, budgetFraction: fraction, budgetBytes: budget, plan,
    predictedPeakBytes: R.predict(profile, plan).peakBytes, extraForwardFlops: R.predict(profile, plan).extraFlops,
    recomputedSegments: plan.segments.filter((s) => s.recompute).length,
  };
  const rows = [row("none", null, null, R.keepAll(profile)), row("sqrt", null, null, R.sqrtPlan(profile))];
  for (const f of fractions) {
    const budget = Math.floor(smallest + f * (top - smallest));
    rows.push(row("greedy", f, budget, R.greedyPlan(profile, budget)), row("optimal", f, budget, R.optimalPlan(profile, budget)));
  }
  return rows.filter((r): r is NonNullable<typeof r> => r !== null);
}

async function compare(): Promise<void> {
  const batch = Number(arg("batch", "64"));
  const fractions = arg("budgets", "0,0.25,0.5,0.75").split(",").map(Number);
  const s = setUp(batch);
  const profile = R.profileModel(s.model, s.x, s.labels, { extraBytes: s.momentumBytes });
  const candidates = plansFor(profile, fractions);
  const rows: (Row & { plan: Plan })[] = candidates.map((c) => ({ ...(c as Row & { plan: Plan }), measuredPeakBytes: [], seconds: [] }));
  const loadBefore = loadavg();
  if (!args.includes("--only-plans")) {
    for (const r of rows) step(s, r.plan); // warm-up round: momentum buffers, scratch
    for (let k = 0; k < repeats; k++) {
      for (const r of rows) {
        const m = step(s, r.plan);
        r.measuredPeakBytes.push(m.peak);
        r.seconds.push(m.seconds);
      }
    }
  }
  const loadAfter = loadavg();
  const forward = R.forwardFlops(profile);
  const none = rows[0];
  console.error(`${modelName}, batch [${profile.inputShape.join(", ")}], ${threads} thread(s), ${rg.getBackend().name}; one forward pass ${(forward / 1e9).toFixed(2)} GFLOP; load average ${loadBefore.map((l) => l.toFixed(1)).join(" ")} before, ${loadAfter.map((l) => l.toFixed(1)).join(" ")} after`);
  console.error("| plan | budget | recomputed segments | extra forward | predicted peak | measured peak | step time (median) |");
  console.error("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const measured = r.measuredPeakBytes.length ? Math.max(...r.measuredPeakBytes) : NaN;
    const t = r.seconds.length ? median(r.seconds) : NaN;
    const rel = (v: number, base: number) => `${(100 * (v / base - 1)).toFixed(0)} %`;
    console.error(`| ${r.method} | ${r.budgetBytes === null ? "–" : `${mib(r.budgetBytes)} MiB (${r.budgetFraction})`} | ${r.recomputedSegments} | ${(100 * r.extraForwardFlops / forward).toFixed(0)} % | ${mib(r.predictedPeakBytes)} MiB | ${mib(measured)} MiB (${rel(measured, Math.max(...none.measuredPeakBytes))}) | ${t.toFixed(2)} s (${rel(t, median(none.seconds))}) |`);
  }
  console.log(JSON.stringify({
    model: modelName, inputShape: profile.inputShape, threads, repeats, loadBefore, loadAfter, forwardFlops: forward, smallestFeasibleBytes: R.smallestPeak(profile).peakBytes,
    // What no plan touches: parameters, buffers, the batch and momentum (baseBytes), and the gradients (as many bytes as the momentum).
    baseBytes: profile.baseBytes, gradientBytes: s.momentumBytes,
    rows: rows.map(({ plan, ...r }) => ({ ...r, segments: plan.segments })),
  }));
}

/** The profile at `batch` from profiles at batches b1 and b2, each figure as a + b·batch. */
function extrapolate(p1: ChainProfile, p2: ChainProfile, b1: number, b2: number, batch: number): ChainProfile {
  const t = (batch - b1) / (b2 - b1);
  const lerp = (u: number, v: number) => Math.round(u + t * (v - u));
  return {
    ...p1,
    inputShape: [batch, ...p1.inputShape.slice(1)],
    baseBytes: lerp(p1.baseBytes, p2.baseBytes), inputBytes: lerp(p1.inputBytes, p2.inputBytes),
    blocks: p1.blocks.map((b, i) => {
      const c = p2.blocks[i];
      return {
        ...b, outputBytes: lerp(b.outputBytes, c.outputBytes), keptBytes: lerp(b.keptBytes, c.keptBytes),
        forwardPeak: lerp(b.forwardPeak, c.forwardPeak), checkpointedForwardPeak: lerp(b.checkpointedForwardPeak, c.checkpointedForwardPeak),
        backwardPeak: lerp(b.backwardPeak, c.backwardPeak), backwardNet: lerp(b.backwardNet, c.backwardNet),
        untilBackward: lerp(b.untilBackward, c.untilBackward), flops: lerp(b.flops, c.flops),
      };
    }),
  };
}

/** The largest batch whose extrapolated `peakOf` fits `limit` (0: not even one). */
function largestBatch(fit: (batch: number) => ChainProfile, limit: number, peakOf: (p: ChainProfile) => number): number {
  let lo = 0, hi = 1;
  while (peakOf(fit(hi)) <= limit) [lo, hi] = [hi, 2 * hi];
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (peakOf(fit(mid)) <= limit) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** The wasm memory's size now (the CPU backend's heap only grows): what a 4 GiB wasm32 limit bounds. */
function wasmBytes(): number {
  const backend = rg.getBackend() as unknown as { runner?: { memory?: WebAssembly.Memory; memoryObject?: WebAssembly.Memory } };
  const memory = backend.runner?.memory ?? backend.runner?.memoryObject;
  return memory?.buffer.byteLength ?? NaN;
}

async function largest(): Promise<void> {
  const limits = arg("largest-batch", String(4 * 2 ** 30)).split(",").map(Number);
  const [b1, b2] = arg("batches", "64,128").split(",").map(Number);
  const profileAt = (batch: number) => {
    const s = setUp(batch);
    const p = R.profileModel(s.model, s.x, s.labels, { extraBytes: s.momentumBytes });
    s.model.dispose();
    s.x.dispose();
    return p;
  };
  const p1 = profileAt(b1), p2 = profileAt(b2);
  const fit = (batch: number) => extrapolate(p1, p2, b1, b2, batch);
  const rows = limits.flatMap((limit) => {
    const without = largestBatch(fit, limit, (p) => R.predict(p, R.keepAll(p)).peakBytes);
    const withPlan = largestBatch(fit, limit, (p) => R.smallestPeak(p).peakBytes);
    console.error(`limit ${mib(limit)} MiB: largest batch without recomputation ${without}, with the least-peak plan ${withPlan} (extrapolated from batches ${b1} and ${b2})`);
    return ([["without", without, false], ["with plan", withPlan, true]] as const).map(([label, batch, planned]) => {
      const profile = fit(batch);
      const plan = planned ? R.smallestPeak(profile).plan : R.keepAll(profile);
      const prediction = R.predict(profile, plan);
      console.error(`  ${label}: batch ${batch}, predicted (extrapolated) peak ${mib(prediction.peakBytes)} MiB, extra forward ${(100 * prediction.extraFlops / R.forwardFlops(profile)).toFixed(0)} %`);
      return { limit, label, batch, predictedPeakBytes: prediction.peakBytes, extraForwardFlops: prediction.extraFlops, forwardFlops: R.forwardFlops(profile), segments: plan.segments };
    });
  });
  console.log(JSON.stringify({ model: modelName, size, threads, batches: [b1, b2], rows }));
}

/**
 * Two training steps at `--batch` through the plan in the file `--step-with` (JSON with
 * `segments`), in a process of their own so that no other run's freed blocks sit in the heap:
 * the second step's peak, the wasm memory's size, and whether it trained.
 */
async function trainSteps(): Promise<void> {
  const { readFileSync } = await import("node:fs");
  const plan: Plan = { segments: JSON.parse(readFileSync(arg("step-with", ""), "utf8")).segments };
  const batch = Number(arg("batch", "64"));
  let outcome = "trained", peak = NaN;
  try {
    const s = setUp(batch);
    step(s, plan); // allocates the momentum buffers
    peak = step(s, plan).peak;
  } catch (error) {
    outcome = `failed: ${(error as Error).message}`;
  }
  console.error(`batch ${batch}: measured peak ${mib(peak)} MiB, wasm memory ${mib(wasmBytes())} MiB: ${outcome}`);
  console.log(JSON.stringify({ model: modelName, batch, measuredPeakBytes: peak, wasmMemoryBytes: wasmBytes(), outcome, segments: plan.segments }));
}

/** Graph plans at the chain's budgets: predicted and measured peaks, no timing. */
function compareGraph(): void {
  const batch = Number(arg("batch", "64"));
  const loadBefore = loadavg();
  const s = setUp(batch);
  const graph = R.profileModelGraph(s.model, s.x, s.labels, { extraBytes: s.momentumBytes });
  const graphSmallest = R.leastPeak(R.lowerSetFamily(graph), R.kusumotoModel(graph)).peakBytes;
  const budgets = [
    ...arg("budget-bytes", "").split(",").filter(Boolean).map((b) => ({ ownLeast: false, budget: Number(b) })),
    { ownLeast: true, budget: graphSmallest },
  ];
  const forward = graph.nodes.reduce((f, node) => f + node.flops, 0);
  const keepAll = R.keepAllGraph(graph);
  step(s, null, new R.GraphPlannedModel(s.model, keepAll)); // warm-up: momentum buffers, scratch
  const none = step(s, null, new R.GraphPlannedModel(s.model, keepAll)).peak;
  console.error(`${modelName}, batch [${graph.inputShape.join(", ")}], ${graph.nodes.length} nodes; without recomputation: predicted ${mib(R.predictGraphPlan(graph, keepAll).peakBytes)} MiB, measured ${mib(none)} MiB`);
  const rows = budgets.map(({ ownLeast, budget }) => {
    try {
      const chosen = R.chooseGraphPlan(graph, budget);
      const measured = step(s, null, new R.GraphPlannedModel(s.model, chosen.plan)).peak;
      const recomputed = chosen.plan.segments.filter((seg) => seg.recompute);
      console.error(`| graph | ${mib(budget)}${ownLeast ? " (its least)" : ""} | ${recomputed.length} | ${(100 * chosen.prediction.extraFlops / forward).toFixed(0)} % | ${mib(chosen.prediction.peakBytes)} | ${mib(measured)} (${(100 * (measured / none - 1)).toFixed(0)} %) |`);
      return { budgetBytes: budget, ownLeastPeak: ownLeast, predictedPeakBytes: chosen.prediction.peakBytes, measuredPeakBytes: measured, extraForwardFlops: chosen.prediction.extraFlops, segments: chosen.plan.segments.map((seg) => ({ ...seg, names: seg.nodes.map((v) => graph.nodes[v].name) })) };
    } catch (error) {
      if (!(error instanceof rg.MemoryBudgetError)) throw error;
      console.error(`| graph | ${mib(budget)} | refused: ${error.message} |`);
      return { budgetBytes: budget, refused: error.message };
    }
  });
  console.log(JSON.stringify({
    model: modelName, inputShape: graph.inputShape, threads, forwardFlops: forward, nodes: graph.nodes.length, fixedBytes: graph.fixedBytes,
    graphSmallestFeasibleBytes: graphSmallest, keepAllPredictedBytes: R.predictGraphPlan(graph, keepAll).peakBytes, keepAllMeasuredBytes: none,
    loadBefore, loadAfter: loadavg(), rows,
  }));
}

installNodeThreads();
await rg.setThreads(threads);
if (args.includes("--largest-batch")) await largest();
else if (args.includes("--step-with")) await trainSteps();
else if (args.includes("--graph")) compareGraph();
else await compare();
await rg.setThreads(1);
