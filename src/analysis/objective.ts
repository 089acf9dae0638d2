/**
 * The loss of one training batch as a function of the parameters, L(W), evaluated without
 * disturbing the run being measured: what every probe of the backward pass is built on
 * (Santurkar et al.'s landscape and internal covariate shift, curvature, logit statistics).
 *
 * Each evaluation runs the model at the given parameters (nn.functionalCall: the model's own
 * tensors are never written), with every BatchNorm normalising by the batch but moving no
 * running statistic (nn.frozenStats), and draws its randomness (dropout masks, BatchNorm
 * noise) from the stream as it stood when the training step's forward pass began
 * (withRandomState): so every evaluation sees the very masks and noise the step saw, L is one
 * deterministic function of W, and the run's own stream does not move. Gradients come from
 * valueAndGrad: no `.grad` is read or written. The model is used in the mode it is in
 * (training, inside a run).
 *
 * The loss is the run's: with PowerGrad, the "gradient" is the transformed one that training
 * follows, while the value is the ordinary cross-entropy.
 */
import { noGrad } from "../autograd.ts";
import { valueAndGrad } from "../functional.ts";
import { ValueError } from "../errors.ts";
import { type RandomState, withRandomState } from "../random.ts";
import { keep, type Tensor, tidy } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import { frozenStats } from "../nn/frozen_stats.ts";
import { functionalCall } from "../nn/functional_call.ts";
import type { ParamMap } from "./param_maps.ts";

/** The batch of a step: its inputs, labels, and the random stream's state when its forward pass began. */
export interface ProbeBatch {
  x: Tensor;
  labels: Int32Array;
  randomState: RandomState;
}

/** The training loss from logits (cross-entropy with the run's options). */
export type LossFn = (logits: Tensor, labels: Int32Array) => Tensor;

export class BatchObjective {
  constructor(readonly model: Module, readonly batch: ProbeBatch, readonly loss: LossFn) {}

  /** `fn` on the step's random stream with BatchNorm statistics frozen; the tensors it returns survive. */
  isolated<T>(fn: () => T): T {
    return withRandomState(this.batch.randomState, () => frozenStats(this.model, () => tidy(fn)));
  }

  /** The logits at `params`, without the tape. */
  logits(params: ParamMap): Tensor {
    return keep(this.isolated(() => noGrad(() => functionalCall(this.model, params, this.batch.x))));
  }

  /**
   * L at `params` and its gradient with respect to the entries named in `wrt` (default: all of
   * `params`); the others are held fixed. The caller owns the returned tensors.
   */
  valueAndGrad(params: ParamMap, wrt: readonly string[] = [...params.keys()]): { loss: Tensor; grads: Map<string, Tensor> } {
    const missing = wrt.filter((name) => !params.has(name));
    if (missing.length > 0) throw new ValueError(`probe: no parameter named ${missing.join(", ")}`);
    const variable = new Set(wrt);
    const fixed = [...params].filter(([name]) => !variable.has(name));
    const lossOf = valueAndGrad((free: ReadonlyMap<string, Tensor>) =>
      this.loss(functionalCall(this.model, new Map([...fixed, ...free]), this.batch.x), this.batch.labels));
    const { loss, grads } = this.isolated(() => {
      const out = lossOf(new Map(wrt.map((name) => [name, params.get(name)!])));
      return { loss: out.value, grads: [...out.grads.values()] };
    });
    keep(loss);
    return { loss, grads: new Map(wrt.map((name, i) => [name, keep(grads[i])])) };
  }
}
