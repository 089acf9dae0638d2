/**
 * Plans under a memory budget, each over a chain's profile (profile.ts) and the cost model
 * (cost_model.ts):
 *
 * - `sqrtPlan`: Chen et al. 2016's √n rule, PyTorch's checkpoint_sequential with k = round(√n)
 *   equal segments, all but the last recomputed.
 * - `greedyPlan`: Chen et al.'s budgeted greedy plan (their Algorithm 3): walk the blocks summing
 *   what each keeps (its kept bytes and output); where the sum passes a threshold B, the block's
 *   output becomes a checkpoint and the sum restarts; every segment but the last is recomputed.
 *   B comes from their heuristic, a grid around √(x·y) with x the checkpoints' bytes and y the
 *   largest block's at B = 0; of the grid's plans, the one with the least recomputation that
 *   fits the budget is taken.
 * - `optimalPlan`: an exact dynamic program. Problem: among single-level plans (each block kept,
 *   or inside exactly one recomputed segment that is replayed once in the backward pass, as
 *   Kusumoto et al. 2019 execute their plans), find one whose predicted peak fits the budget with
 *   the fewest forward FLOPs added, ties to the lower peak. States are (next block, bytes held,
 *   whether the graph before keeps the next input, peak so far, FLOPs so far); a segment's cost
 *   depends on the past only through the first two and the third (cost_model.ts), peak and FLOPs
 *   only grow, so a state dominated in bytes held, peak and FLOPs can be dropped, and what is
 *   left (the Pareto front at each block) contains an optimal plan: the program is exact for the
 *   cost model, with no discretisation. Each state has n + 1 successors at most.
 *
 * Not here: Gruslys et al. 2016's multi-level schedules (a segment replayed inside a replay,
 * Q(t, m)); checkpoint() nests, but the planners only plan one level. On a ResNet the cuts this
 * program considers are the block outputs' ancestor sets, the only lower sets a chain of blocks
 * offers; Kusumoto et al.'s program over the graph of ops, with cuts inside residual blocks,
 * is graph_planner.ts (with their coarser cost model, not this file's measured one).
 */
import { ValueError } from "../errors.ts";
import { advance, finish, initialState, type Plan, type PlanState, predict, type Prediction, type Segment } from "./cost_model.ts";
import { MemoryBudgetError } from "./errors.ts";
import type { ChainProfile } from "./profile.ts";
import { sequentialSegments } from "./sequential.ts";

export type PlanMethod = "none" | "sqrt" | "greedy" | "optimal";
export const PLAN_METHODS: readonly PlanMethod[] = ["none", "sqrt", "greedy", "optimal"];

const blockCount = (profile: ChainProfile) => profile.blocks.length - 1; // the last is the loss

/** Blocks [start, end) kept, one segment each. */
const kept = (start: number, end: number): Segment[] =>
  Array.from({ length: end - start }, (_, k) => ({ start: start + k, end: start + k + 1, recompute: false }));

/** No recomputation. */
export function keepAll(profile: ChainProfile): Plan {
  return { segments: kept(0, blockCount(profile)) };
}

/** `runs` recomputed, each one segment, and the blocks after the last run kept. */
function fromCuts(n: number, runs: [number, number][]): Plan {
  const last = runs.length > 0 ? runs[runs.length - 1][1] : 0;
  return { segments: [...runs.map(([start, end]) => ({ start, end, recompute: true })), ...kept(last, n)] };
}

export function sqrtPlan(profile: ChainProfile): Plan {
  const n = blockCount(profile);
  const runs = sequentialSegments(n, Math.max(1, Math.round(Math.sqrt(n))));
  return fromCuts(n, runs.slice(0, -1));
}

/** Chen et al.'s Algorithm 3 at threshold `threshold` bytes. */
export function greedyAt(profile: ChainProfile, threshold: number): Plan {
  const n = blockCount(profile);
  const runs: [number, number][] = [];
  let sum = 0;
  let start = 0;
  for (let i = 0; i < n; i++) {
    sum += profile.blocks[i].keptBytes + profile.blocks[i].outputBytes;
    if (sum > threshold) {
      runs.push([start, i + 1]);
      start = i + 1;
      sum = 0;
    }
  }
  // The last segment's backward comes first: replaying it would keep as much.
  if (runs.length > 0 && runs[runs.length - 1][1] === n) runs.pop();
  return fromCuts(n, runs);
}

/** The thresholds Chen et al. try: a grid around √(x·y) from the trial at 0. */
export function greedyThresholds(profile: ChainProfile): number[] {
  const blocks = profile.blocks.slice(0, -1);
  const x = blocks.reduce((s, b) => s + b.outputBytes, 0);
  const y = Math.max(...blocks.map((b) => b.keptBytes + b.outputBytes));
  const center = Math.sqrt(x * y);
  return Array.from({ length: 17 }, (_, k) => center * 2 ** ((k - 8) / 4));
}

/** Plans with the same segments are the same plan. */
const key = (plan: Plan) => plan.segments.map((s) => `${s.start}-${s.end}${s.recompute ? "r" : ""}`).join(",");

/** The greedy plans of the threshold grid, each once, with their predictions. */
export function greedyCandidates(profile: ChainProfile): { plan: Plan; prediction: Prediction }[] {
  const seen = new Map<string, Plan>();
  for (const t of [0, ...greedyThresholds(profile)]) {
    const plan = greedyAt(profile, t);
    seen.set(key(plan), plan);
  }
  return [...seen.values()].map((plan) => ({ plan, prediction: predict(profile, plan) }));
}

/** The greedy plan with the least recomputation that fits `budget` (null: none of the grid fits). */
export function greedyPlan(profile: ChainProfile, budget: number): Plan | null {
  const fitting = greedyCandidates(profile).filter((c) => c.prediction.peakBytes <= budget);
  fitting.sort((a, b) => a.prediction.extraFlops - b.prediction.extraFlops || a.prediction.peakBytes - b.prediction.peakBytes);
  return fitting[0]?.plan ?? null;
}

interface Label {
  state: PlanState;
  segment: Segment | null;
  parent: Label | null;
}

const dominates = (a: PlanState, b: PlanState) =>
  a.inputKeptBefore === b.inputKeptBefore && a.held <= b.held && a.peak <= b.peak && a.extraFlops <= b.extraFlops;

function insert(front: Label[], label: Label): void {
  if (front.some((other) => dominates(other.state, label.state))) return;
  for (let k = front.length - 1; k >= 0; k--) if (dominates(label.state, front[k].state)) front.splice(k, 1);
  front.push(label);
}

/** Every Pareto-optimal complete plan whose peak stays within `budget` (see the file's header). */
function paretoPlans(profile: ChainProfile, budget: number): { plan: Plan; prediction: Prediction }[] {
  const n = blockCount(profile);
  const fronts: Label[][] = Array.from({ length: n + 1 }, () => []);
  fronts[0].push({ state: initialState(profile), segment: null, parent: null });
  for (let pos = 0; pos < n; pos++) {
    for (const label of fronts[pos]) {
      const options: Segment[] = [{ start: pos, end: pos + 1, recompute: false }];
      for (let end = pos + 1; end <= n; end++) options.push({ start: pos, end, recompute: true });
      for (const segment of options) {
        const state = advance(profile, label.state, segment);
        if (state.peak <= budget) insert(fronts[segment.end], { state, segment, parent: label });
      }
    }
  }
  const complete: { plan: Plan; prediction: Prediction }[] = [];
  for (const label of fronts[n]) {
    const end = finish(profile, label.state);
    if (end.peak > budget) continue;
    const segments: Segment[] = [];
    for (let l: Label | null = label; l?.segment; l = l.parent) segments.unshift(l.segment);
    complete.push({ plan: { segments }, prediction: { peakBytes: end.peak, extraFlops: end.extraFlops } });
  }
  return complete;
}

/** The plan with the fewest added FLOPs whose predicted peak fits `budget` (null: none does). */
export function optimalPlan(profile: ChainProfile, budget: number): Plan | null {
  const plans = paretoPlans(profile, budget);
  plans.sort((a, b) => a.prediction.extraFlops - b.prediction.extraFlops || a.prediction.peakBytes - b.prediction.peakBytes);
  return plans[0]?.plan ?? null;
}

/** The least predicted peak of any single-level plan, and a plan that reaches it. */
export function smallestPeak(profile: ChainProfile): { plan: Plan; peakBytes: number } {
  const plans = paretoPlans(profile, Infinity);
  plans.sort((a, b) => a.prediction.peakBytes - b.prediction.peakBytes || a.prediction.extraFlops - b.prediction.extraFlops);
  return { plan: plans[0].plan, peakBytes: plans[0].prediction.peakBytes };
}

export interface ChosenPlan {
  method: PlanMethod;
  plan: Plan;
  prediction: Prediction;
  budgetBytes: number | null;
  /** Predicted peak without recomputation. */
  keepAllPeakBytes: number;
  /** The least predicted peak of any single-level plan. */
  smallestFeasibleBytes: number;
}

const MiB = 2 ** 20;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/**
 * The plan `method` makes for `budgetBytes` (null: no budget; only "none" and "sqrt" need
 * none). A budget below every plan's predicted peak, or one the method's plans cannot meet, is
 * refused with a MemoryBudgetError naming the smallest feasible budget.
 */
export function choosePlan(profile: ChainProfile, method: PlanMethod, budgetBytes: number | null): ChosenPlan {
  if (!PLAN_METHODS.includes(method)) throw new ValueError(`memory plan: method must be one of ${PLAN_METHODS.join(", ")}, got ${JSON.stringify(method)}`);
  if (budgetBytes !== null && !(budgetBytes > 0)) throw new ValueError(`memory plan: the budget must be > 0 bytes, got ${budgetBytes}`);
  if (budgetBytes === null && (method === "greedy" || method === "optimal")) throw new ValueError(`memory plan: the ${method} plan needs a budget`);
  const smallest = smallestPeak(profile).peakBytes;
  const keepAllPeak = predict(profile, keepAll(profile)).peakBytes;
  const budget = budgetBytes ?? Infinity;
  if (budget < smallest) {
    throw new MemoryBudgetError(`memory budget ${mib(budget)} is below the smallest feasible budget ${mib(smallest)} (${smallest} bytes: the least predicted peak of any plan for this model and batch; without recomputation ${mib(keepAllPeak)})`, budget, smallest);
  }
  const plan = method === "none" ? keepAll(profile)
    : method === "sqrt" ? sqrtPlan(profile)
    : method === "greedy" ? greedyPlan(profile, budget)
    : optimalPlan(profile, budget);
  const prediction = plan && predict(profile, plan);
  if (!plan || !prediction || prediction.peakBytes > budget) {
    const reach = method === "greedy"
      ? Math.min(...greedyCandidates(profile).map((c) => c.prediction.peakBytes))
      : prediction?.peakBytes ?? smallest;
    throw new MemoryBudgetError(`memory budget ${mib(budget)}: the ${method} plan needs ${mib(reach)}; the smallest feasible budget is ${mib(smallest)} (${smallest} bytes), with the optimal plan`, budget, smallest);
  }
  return { method, plan, prediction, budgetBytes, keepAllPeakBytes: keepAllPeak, smallestFeasibleBytes: smallest };
}
