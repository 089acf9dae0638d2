/**
 * Pipelined backpropagation simulated on one machine (Kosson, Chiley, Venigalla, Hestness,
 * Köster, "Pipelined Backpropagation at Scale: Training Large Models without Batches",
 * arXiv 2003.11666). In a pipeline of stages that never drains, a sample's gradient at stage
 * s reaches the weights D_s steps after the forward pass that produced it: the update at step
 * t uses a gradient computed at the weights of step t − D_s. This optimiser reproduces that
 * staleness: it keeps each parameter's latest weights w (the "master" copy) and hands the
 * model, for each forward and backward pass, the weights of D_s steps ago. The forward/backward
 * weight mismatch of a real pipeline (its backward pass runs on newer weights than its
 * forward did) is not simulated: both passes of one step see the same stale weights.
 *
 * Momentum v ← m·v + g (g with weight decay wd·w added), and the two mitigations:
 * - Spike Compensation (SC): w ← w − η(a·v + b·g) with a = m^D, b = (1 − m^D)/(1 − m), in
 *   place of w ← w − η·v: the delayed gradient gets at once the weight that momentum would
 *   have given it over the D steps it was late.
 * - Linear Weight Prediction (LWP): the forward pass runs on ŵ = w − η·D·v, a prediction of
 *   the weights D steps on, instead of w; the gradient is then applied near where it was taken.
 * With D = 0 (or every delay 0) both reduce to plain SGD with momentum.
 *
 * The evaluation weights are the latest w (`evaluationWeights`); a checkpoint holds w, v and
 * the queue of forward weights still in the pipeline.
 */
import { StateDictError, ValueError } from "../errors.ts";
import { cloneData, keep, type Tensor, tidy } from "../tensor.ts";
import { noGrad } from "../autograd.ts";
import { sameShape } from "../ops/util.ts";
import type { Optimizer, ParamGroup } from "./optimizer.ts";

export interface PipelinedSGDConfig {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  spikeCompensation?: boolean;
  linearWeightPrediction?: boolean;
  /** Each stage's delay in steps (default: 2·(S − 1 − s) for stage s of S, the last stage 0). */
  delays?: readonly number[];
}

export interface PipelineStageOptions {
  /** Steps between the forward pass that makes a gradient and the update that applies it. */
  delay: number;
  momentum: number;
  weightDecay: number;
}

/** What the simulation keeps per parameter. */
interface Slot {
  param: Tensor;
  /** The latest weights w. */
  master: Tensor;
  velocity: Tensor;
  /** The forward weights of the next `delay` steps after the one the parameter holds, oldest first. */
  queue: Tensor[];
}

export class PipelinedSGD implements Optimizer {
  readonly paramGroups: ParamGroup<PipelineStageOptions>[];
  /** Every parameter in stage order: the index of the state names. */
  readonly params: readonly Tensor[];
  readonly spikeCompensation: boolean;
  readonly linearWeightPrediction: boolean;
  private baseLr = 0;
  private readonly slots: Slot[][];

  /** `stages`: the parameters of each pipeline stage, from the input side to the loss. */
  constructor(stages: readonly (readonly Tensor[])[], config: PipelinedSGDConfig) {
    const S = stages.length;
    if (S === 0) throw new ValueError("PipelinedSGD: no stages");
    const delays = config.delays ?? stages.map((_, s) => 2 * (S - 1 - s));
    if (delays.length !== S || !delays.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ValueError(`PipelinedSGD: delays must be ${S} integers ≥ 0 (one per stage), got ${JSON.stringify(delays)}`);
    }
    const momentum = config.momentum ?? 0, weightDecay = config.weightDecay ?? 0;
    if (!(momentum >= 0 && momentum < 1)) throw new ValueError(`PipelinedSGD: momentum must be in [0, 1), got ${momentum}`);
    if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) throw new ValueError(`PipelinedSGD: weightDecay must be a finite number ≥ 0, got ${weightDecay}`);
    this.lr = config.lr;
    this.spikeCompensation = config.spikeCompensation ?? false;
    this.linearWeightPrediction = config.linearWeightPrediction ?? false;
    const seen = new Set<Tensor>();
    this.paramGroups = stages.map((params, s) => {
      for (const p of params) {
        if (!p.requiresGrad) throw new ValueError(`PipelinedSGD: parameter ${p} of stage ${s} does not require grad`);
        if (seen.has(p)) throw new ValueError(`PipelinedSGD: parameter ${p} appears in more than one stage`);
        seen.add(p);
      }
      return { params: [...params], lrScale: 1, options: { delay: delays[s], momentum, weightDecay } };
    });
    this.params = this.paramGroups.flatMap((g) => g.params);
    // The pipeline starts full of the initial weights.
    this.slots = this.paramGroups.map((g) => g.params.map((param) => ({
      param, master: keep(cloneData(param)), velocity: keep(cloneData(param).zero_()),
      queue: Array.from({ length: g.options.delay }, () => keep(cloneData(param))),
    })));
  }

  get lr(): number {
    return this.baseLr;
  }

  set lr(value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new ValueError(`PipelinedSGD: lr must be a finite number ≥ 0, got ${value}`);
    this.baseLr = value;
  }

  /** Apply each parameter's (stale) gradient to its latest weights, then move the pipeline on by one step. */
  step(): void {
    noGrad(() => this.paramGroups.forEach((group, s) => {
      const { delay: D, momentum: m, weightDecay } = group.options;
      const lr = this.baseLr * group.lrScale;
      // SC's weights; without SC the update is η·v (a = 1, b = 0).
      const a = this.spikeCompensation ? m ** D : 1;
      const b = this.spikeCompensation ? (m === 0 ? (D > 0 ? 1 : 0) : (1 - m ** D) / (1 - m)) : 0;
      for (const slot of this.slots[s]) {
        const g = slot.param.grad;
        if (!g) continue;
        tidy(() => {
          const d = cloneData(g);
          if (weightDecay !== 0) d.add_(slot.master, weightDecay);
          slot.velocity.mul_(m).add_(d);
          slot.master.add_(slot.velocity, -lr * a);
          if (b !== 0) slot.master.add_(d, -lr * b);
          const next = keep(cloneData(slot.master));
          if (this.linearWeightPrediction && D > 0) next.add_(slot.velocity, -lr * D);
          slot.queue.push(next);
          const current = slot.queue.shift()!;
          slot.param.copy_(current);
          current.dispose();
        });
      }
    }));
  }

  zeroGrad(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** Put the latest weights in the model (for evaluation); the returned function puts the forward weights back. */
  evaluationWeights(): () => void {
    const held = this.slots.flat().map((slot) => {
      const forward = cloneData(slot.param);
      slot.param.copy_(slot.master);
      return [slot, forward] as const;
    });
    return () => {
      for (const [slot, forward] of held) {
        slot.param.copy_(forward);
        forward.dispose();
      }
    };
  }

  /**
   * `state.<i>.momentum_buffer` (v), `state.<i>.master` (w) and `state.<i>.queue.<k>` (the
   * forward weights still in the pipeline, oldest first), i counting parameters across stages.
   */
  stateDict(): Map<string, Tensor> {
    const state = new Map<string, Tensor>();
    this.slots.flat().forEach((slot, i) => {
      state.set(`state.${i}.momentum_buffer`, slot.velocity);
      state.set(`state.${i}.master`, slot.master);
      slot.queue.forEach((q, k) => state.set(`state.${i}.queue.${k}`, q));
    });
    return state;
  }

  /** Restore a stateDict(); every key must be there with its shape (a StateDictError lists what is not). */
  loadStateDict(state: Map<string, Tensor>): void {
    const targets = this.stateDict();
    const missing = [...targets.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !targets.has(k));
    const mismatched = [...targets].flatMap(([k, t]) => {
      const saved = state.get(k);
      return saved && !sameShape(saved.shape, t.shape) ? [`${k}: expected [${t.shape.join(", ")}], got [${saved.shape.join(", ")}]`] : [];
    });
    const invalid = StateDictError.check("PipelinedSGD.loadStateDict", true, missing, unexpected, mismatched);
    if (invalid) throw invalid;
    for (const [k, t] of targets) t.copy_(state.get(k)!);
  }
}

/**
 * One pipeline stage per layer: the parameters grouped by the module that owns them
 * ("layer1.0.conv1.weight" → "layer1.0.conv1"), in the model's order.
 */
export function layerStages(model: { namedParameters(): Iterable<[string, Tensor]> }): Tensor[][] {
  const stages = new Map<string, Tensor[]>();
  for (const [name, p] of model.namedParameters()) {
    const owner = name.slice(0, Math.max(0, name.lastIndexOf(".")));
    const stage = stages.get(owner);
    if (stage) stage.push(p);
    else stages.set(owner, [p]);
  }
  return [...stages.values()];
}
