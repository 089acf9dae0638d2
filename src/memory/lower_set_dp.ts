/**
 * Kusumoto et al. 2019's dynamic program over lower sets ("A Graph Theoretic Framework of
 * Recomputation Algorithms for Memory-Efficient Backpropagation"): a plan is an increasing
 * chain ∅ = L_0 ⊊ L_1 ⊊ … ⊊ L_k = V of lower sets from a family (graph.ts); segment i is
 * L_i \ L_{i−1}, run in the forward pass keeping only what later segments read, and recomputed
 * once in the backward pass (or recorded as usual). The program walks the family by size and
 * extends every plan ending at L_i by every L_j ⊋ L_i, as theirs does.
 *
 * What a segment costs comes from a `SegmentModel`. A segment's effect must depend on what came
 * before only through the bytes held when it starts (and a small tag, e.g. whether the graph
 * before keeps its input): it adds to the bytes held, raises the peak to at least the bytes held
 * plus a fixed amount, and adds FLOPs. So every completion of a plan is open to any plan that
 * holds no more bytes with the same tag. As Kusumoto et al.'s table opt[L][t] keeps, for each
 * lower set and each time, the least memory held, this program keeps for each lower set, tag
 * and number of added FLOPs (the objective "flops": fewest FLOPs within a budget, ties to the
 * lower peak), or for each lower set and tag (the objective "peak": least peak), the labels no
 * other in the same group beats in both bytes held and peak so far. A dropped label's every
 * completion does no better than the same completion of the label that beat it, so what is
 * left contains an optimal plan: the program is exact for the model, the family and the FLOPs
 * as the model counts them (their implementation counts time in < 5·|V| units; a model may too,
 * graph_planner.ts).
 */
import { type LowerSet, properSubset } from "./graph.ts";

/** Where a plan stands after some segments. */
export interface CutState {
  /** Bytes held after the forward pass of the segments so far. */
  held: number;
  peak: number;
  extraFlops: number;
  /** What else later segments' costs depend on (0 where nothing does). */
  tag: number;
}

/** What one segment does to a state held at h: peak ≥ h + peakAbove, held h + heldDelta. */
export interface SegmentEffect {
  peakAbove: number;
  heldDelta: number;
  flops: number;
  tag: number;
}

export interface SegmentModel {
  start(): CutState;
  /** The segment `to \ from`, recomputed or recorded, after a state tagged `tag` (null: not a segment this model runs). */
  effect(from: LowerSet, to: LowerSet, recompute: boolean, tag: number): SegmentEffect | null;
  /** After the last segment (e.g. the loss). */
  finish(state: CutState): CutState;
}

export function applyEffect(state: CutState, e: SegmentEffect): CutState {
  return { held: state.held + e.heldDelta, peak: Math.max(state.peak, state.held + e.peakAbove), extraFlops: state.extraFlops + e.flops, tag: e.tag };
}

/** A chain of the family: its lower sets' indices after ∅, and for each segment whether it is recomputed. */
export interface LowerSetChain {
  cuts: number[];
  recompute: boolean[];
  peakBytes: number;
  extraFlops: number;
}

interface Label {
  state: CutState;
  at: number;
  recompute: boolean;
  parent: Label | null;
}

/** What the program minimises: the added FLOPs within a budget (ties to the lower peak), or the peak. */
export type Objective = "flops" | "peak";

/** The group a label competes in (tags are small integers). */
const GROUP: Record<Objective, (s: CutState) => number> = {
  flops: (s) => s.extraFlops * 16 + s.tag,
  peak: (s) => s.tag,
};

const dominates = (a: CutState, b: CutState) => a.held <= b.held && a.peak <= b.peak;

function insert(fronts: Map<number, Label[]>, group: number, label: Label): void {
  const front = fronts.get(group);
  if (!front) return void fronts.set(group, [label]);
  if (front.some((other) => dominates(other.state, label.state))) return;
  for (let k = front.length - 1; k >= 0; k--) if (dominates(label.state, front[k].state)) front.splice(k, 1);
  front.push(label);
}

/**
 * The chains of `family` (sorted by size, ∅ first, V last) whose peak stays within `budget`
 * that the program keeps for `objective`: an optimal one among them.
 */
export function paretoChains(family: readonly LowerSet[], model: SegmentModel, budget: number, objective: Objective): LowerSetChain[] {
  const groupOf = GROUP[objective];
  const last = family.length - 1;
  const fronts: Map<number, Label[]>[] = family.map(() => new Map());
  const effects = new Map<string, SegmentEffect | null>();
  const effectOf = (i: number, j: number, recompute: boolean, tag: number) => {
    const key = `${i} ${j} ${recompute ? 1 : 0} ${tag}`;
    if (!effects.has(key)) effects.set(key, model.effect(family[i], family[j], recompute, tag));
    return effects.get(key)!;
  };
  const start = model.start();
  fronts[0].set(groupOf(start), [{ state: start, at: 0, recompute: false, parent: null }]);
  for (let i = 0; i < last; i++) {
    const labels = [...fronts[i].values()].flat();
    for (let j = i + 1; j <= last; j++) {
      if (!properSubset(family[i], family[j])) continue;
      for (const label of labels) {
        for (const recompute of [false, true]) {
          const e = effectOf(i, j, recompute, label.state.tag);
          if (!e) continue;
          const state = applyEffect(label.state, e);
          if (state.peak <= budget) insert(fronts[j], groupOf(state), { state, at: j, recompute, parent: label });
        }
      }
    }
  }
  const chains: LowerSetChain[] = [];
  for (const label of [...fronts[last].values()].flat()) {
    const end = model.finish(label.state);
    if (end.peak > budget) continue;
    const cuts: number[] = [], recompute: boolean[] = [];
    for (let l: Label | null = label; l?.parent; l = l.parent) {
      cuts.unshift(l.at);
      recompute.unshift(l.recompute);
    }
    chains.push({ cuts, recompute, peakBytes: end.peak, extraFlops: end.extraFlops });
  }
  return chains;
}

/** The chain with the fewest added FLOPs within `budget`, ties to the lower peak (null: none fits). */
export function fewestFlops(family: readonly LowerSet[], model: SegmentModel, budget: number): LowerSetChain | null {
  const chains = paretoChains(family, model, budget, "flops");
  chains.sort((a, b) => a.extraFlops - b.extraFlops || a.peakBytes - b.peakBytes);
  return chains[0] ?? null;
}

/** A chain with the least peak (which of several, unspecified: fewestFlops at that peak picks one). */
export function leastPeak(family: readonly LowerSet[], model: SegmentModel): LowerSetChain {
  const chains = paretoChains(family, model, Infinity, "peak");
  chains.sort((a, b) => a.peakBytes - b.peakBytes);
  return chains[0];
}
