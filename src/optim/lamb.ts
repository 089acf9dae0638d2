/**
 * LAMB (You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
 * minutes", arXiv 1904.00962) with the semantics of timm's `Lamb` (NVIDIA's FusedLAMB
 * behaviour), per parameter group:
 *   with maxGradNorm c: every gradient is divided by max(‖(g₁,…,g_n)‖/c, 1) first (the
 *   global norm over all parameters with a gradient);
 *   Adam's moments and bias-corrected direction u = m̂/(√v̂ + ε) (adam.ts), u ← u + λw;
 *   where λ ≠ 0 (or alwaysAdapt): trust = ‖w‖/‖u‖ (1 where either is 0), with trustClip
 *   min(trust, 1) (LAMBC), u ← trust·u;
 *   w ← w − η·u.
 * One difference from timm: the step count t of the bias corrections is kept per parameter
 * (saved as `state.<i>.step`, like Adam's) where timm keeps one per group; they differ only
 * when some parameters of a group have no gradient at some step. Defaults are timm's
 * (lr 1e-3, betas 0.9/0.999, eps 1e-6, weight decay 0.01, maxGradNorm 1).
 */
import { ValueError } from "../errors.ts";
import { noGrad } from "../autograd.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { where } from "../ops/compare.ts";
import "../ops/methods.ts";
import { adamDirection, checkAdamOptions } from "./adam.ts";
import { globalNorm } from "./clip.ts";
import { OptimizerBase, type StateNames } from "./base.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export interface LAMBGroupOptions {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  trustClip: boolean;
  alwaysAdapt: boolean;
}

export interface LAMBConfig extends Partial<LAMBGroupOptions> {
  lr?: number;
  /** The global-norm clipping applied before the step (null: none). Default 1, as timm. */
  maxGradNorm?: number | null;
}

export class LAMB extends OptimizerBase<LAMBGroupOptions> {
  readonly maxGradNorm: number | null;

  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<LAMBGroupOptions>[], config: LAMBConfig = {}) {
    super("LAMB", params, config.lr ?? 1e-3, {
      betas: config.betas ?? [0.9, 0.999],
      eps: config.eps ?? 1e-6,
      weightDecay: config.weightDecay ?? 0.01,
      trustClip: config.trustClip ?? false,
      alwaysAdapt: config.alwaysAdapt ?? false,
    }, true, checkAdamOptions);
    this.maxGradNorm = config.maxGradNorm === undefined ? 1 : config.maxGradNorm;
    if (this.maxGradNorm !== null && !(this.maxGradNorm > 0)) {
      throw new ValueError(`LAMB: maxGradNorm must be a number > 0 or null, got ${this.maxGradNorm}`);
    }
  }

  protected stateNames(): StateNames {
    return { required: ["exp_avg", "exp_avg_sq"] };
  }

  step(): void {
    const grads = this.params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
    if (grads.length === 0) return;
    const maxNorm = this.maxGradNorm;
    const divisor = maxNorm === null ? null : noGrad(() => tidy(() => globalNorm(grads, 2).div(maxNorm).clamp(1)));
    this.forEachWithGrad((p, grad, i, o, lr) => {
      const m = this.stateTensor(i, "exp_avg"), v = this.stateTensor(i, "exp_avg_sq");
      const step = this.countStep(i);
      tidy(() => {
        let update = adamDirection(m, v, divisor ? grad.div(divisor) : grad, step, o);
        if (o.weightDecay !== 0) update = update.add(p.mul(o.weightDecay));
        let trust: Tensor | null = null;
        if (o.weightDecay !== 0 || o.alwaysAdapt) {
          const wNorm = p.norm(), uNorm = update.norm();
          trust = where(wNorm.gt(0), where(uNorm.gt(0), wNorm.div(uNorm), 1), 1);
          if (o.trustClip) trust = trust.minimum(1);
          update = update.mul(trust);
        }
        this.recordRate(i, trust);
        p.add_(update, -lr);
      });
    });
    divisor?.dispose();
  }
}
