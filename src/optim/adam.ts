/**
 * Adam (Kingma & Ba, arXiv 1412.6980) and AdamW (Loshchilov & Hutter, arXiv 1711.05101) with
 * torch.optim's semantics and defaults, per parameter group, in tensor ops:
 *   g ← g + λw (Adam) or w ← w·(1 − ηλ) (AdamW, decoupled),
 *   m ← β₁m + (1 − β₁)g,   v ← β₂v + (1 − β₂)g²,   t ← t + 1,
 *   v_max ← max(v_max, v) with amsgrad (Reddi et al.), used in place of v below,
 *   w ← w − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
 * State names are PyTorch's (exp_avg, exp_avg_sq, max_exp_avg_sq, step), so a checkpoint's
 * optimiser part loads into torch.optim.Adam/AdamW. Composed from ops, it runs on every
 * backend; no fused kernel, since an optimiser step is a few passes over the weights, small
 * next to a convolution network's forward and backward.
 */
import { ValueError } from "../errors.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { maximum } from "../ops/compare.ts";
import "../ops/methods.ts";
import { OptimizerBase, type StateNames } from "./base.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export interface AdamGroupOptions {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

export interface AdamConfig extends Partial<AdamGroupOptions> {
  lr?: number;
}

/** Adam's hyper-parameters, checked once per group. */
export function checkAdamOptions(o: { betas: readonly [number, number]; eps: number; weightDecay: number }, where: string): void {
  if (!Array.isArray(o.betas) || o.betas.length !== 2 || !o.betas.every((b) => b >= 0 && b < 1)) {
    throw new ValueError(`${where}: betas must be two numbers in [0, 1), got ${JSON.stringify(o.betas)}`);
  }
  if (!(o.eps >= 0) || !Number.isFinite(o.eps)) throw new ValueError(`${where}: eps must be a finite number ≥ 0, got ${o.eps}`);
  if (!(o.weightDecay >= 0) || !Number.isFinite(o.weightDecay)) {
    throw new ValueError(`${where}: weightDecay must be a finite number ≥ 0, got ${o.weightDecay}`);
  }
}

/**
 * Adam's moments of parameter i (made on its first step), updated with gradient g, and the
 * bias-corrected update direction m̂/(√v̂ + ε) as a new tensor. LAMB shares it.
 */
export function adamDirection(m: Tensor, v: Tensor, g: Tensor, step: number, o: { betas: readonly [number, number]; eps: number }, vMax: Tensor | null = null): Tensor {
  const [beta1, beta2] = o.betas;
  m.mul_(beta1).add_(g, 1 - beta1);
  tidy(() => v.mul_(beta2).add_(g.square(), 1 - beta2));
  if (vMax) tidy(() => vMax.copy_(maximum(vMax, v)));
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  return tidy(() => m.div((vMax ?? v).sqrt().div(Math.sqrt(biasCorrection2)).add(o.eps)).div(biasCorrection1));
}

export class Adam extends OptimizerBase<AdamGroupOptions> {
  /**
   * `decoupled`: AdamW's weight decay (the weights shrink by ηλ before the step) instead of
   * Adam's λw added to the gradient.
   */
  constructor(
    params: Iterable<Tensor> | readonly ParamGroupSpec<AdamGroupOptions>[], config: AdamConfig = {},
    readonly decoupled = false, name = "Adam",
  ) {
    super(name, params, config.lr ?? 1e-3, {
      betas: config.betas ?? [0.9, 0.999],
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? (decoupled ? 1e-2 : 0),
      amsgrad: config.amsgrad ?? false,
    }, true, checkAdamOptions);
  }

  protected stateNames(i: number): StateNames {
    return { required: ["exp_avg", "exp_avg_sq", ...(this.groupOf[i].options.amsgrad ? ["max_exp_avg_sq"] : [])] };
  }

  step(): void {
    this.forEachWithGrad((p, grad, i, o, lr) => {
      const m = this.stateTensor(i, "exp_avg"), v = this.stateTensor(i, "exp_avg_sq");
      const vMax = o.amsgrad ? this.stateTensor(i, "max_exp_avg_sq") : null;
      const step = this.countStep(i);
      this.recordRate(i, null);
      tidy(() => {
        let g = grad;
        if (o.weightDecay !== 0) {
          if (this.decoupled) p.mul_(1 - lr * o.weightDecay);
          else g = g.add(p.mul(o.weightDecay));
        }
        p.add_(adamDirection(m, v, g, step, o, vMax), -lr);
      });
    });
  }
}

/** AdamW: Adam with decoupled weight decay (default λ = 0.01, as torch.optim.AdamW). */
export class AdamW extends Adam {
  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<AdamGroupOptions>[], config: AdamConfig = {}) {
    super(params, config, true, "AdamW");
  }
}
