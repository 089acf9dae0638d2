/**
 * LARS (You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", arXiv
 * 1708.03888) with the semantics of timm's `Lars` (which follows NVIDIA apex's LARC), per
 * parameter group: where the group's weight decay λ ≠ 0 (or `alwaysAdapt`),
 *   trust = c·‖w‖ / (‖g‖ + λ‖w‖ + ε)   (1 where ‖w‖ or ‖g‖ is 0),
 *   with trustClip (LARC): trust ← min(trust/η, 1),
 *   g ← (g + λw)·trust;
 * then torch.optim.SGD's momentum step on g without further decay (sgd.ts's sgdUpdate).
 * Groups with λ = 0 and no alwaysAdapt take plain SGD steps, as in timm, which is how the
 * usual "no decay on norms and biases" group also escapes the adaptation. State:
 * momentum_buffer. In tensor ops: the trust ratio stays on the device.
 */
import { ValueError } from "../errors.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { where } from "../ops/compare.ts";
import "../ops/methods.ts";
import { checkSgdOptions, MomentumOptimizer, type SGDConfig, sgdDefaults, type SGDGroupOptions, sgdUpdate } from "./sgd.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export interface LARSGroupOptions extends SGDGroupOptions {
  /** c above (timm's trust_coeff). */
  trustCoef: number;
  eps: number;
  /** LARC: trust ← min(trust/η, 1). */
  trustClip: boolean;
  /** Adapt groups without weight decay too. */
  alwaysAdapt: boolean;
}

export interface LARSConfig extends SGDConfig, Partial<Omit<LARSGroupOptions, keyof SGDGroupOptions>> {}

function checkLarsOptions(o: LARSGroupOptions, where: string): void {
  checkSgdOptions(o, where);
  if (!(o.trustCoef > 0) || !Number.isFinite(o.trustCoef)) throw new ValueError(`${where}: trustCoef must be a finite number > 0, got ${o.trustCoef}`);
  if (!(o.eps >= 0) || !Number.isFinite(o.eps)) throw new ValueError(`${where}: eps must be a finite number ≥ 0, got ${o.eps}`);
}

/** The trust ratio timm's Lars computes (a 0-d tensor), or 1 where either norm is 0. */
export function larsTrust(p: Tensor, g: Tensor, o: LARSGroupOptions, lr: number): Tensor {
  const wNorm = p.norm(), gNorm = g.norm();
  let trust = wNorm.mul(o.trustCoef).div(gNorm.add(wNorm.mul(o.weightDecay)).add(o.eps));
  trust = where(wNorm.gt(0), where(gNorm.gt(0), trust, 1), 1);
  return o.trustClip ? trust.div(lr).minimum(1) : trust;
}

export class LARS extends MomentumOptimizer<LARSGroupOptions> {
  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<LARSGroupOptions>[], config: LARSConfig) {
    super("LARS", params, config.lr, {
      ...sgdDefaults(config),
      trustCoef: config.trustCoef ?? 1e-3,
      eps: config.eps ?? 1e-8,
      trustClip: config.trustClip ?? false,
      alwaysAdapt: config.alwaysAdapt ?? false,
    }, false, checkLarsOptions);
  }

  step(): void {
    this.forEachWithGrad((p, grad, i, o, lr) => {
      const { buffer, firstStep } = this.momentumBuffer(i);
      tidy(() => {
        if (o.weightDecay === 0 && !o.alwaysAdapt) {
          this.recordRate(i, null);
          sgdUpdate(p, grad, buffer, firstStep, { ...o, lr });
          return;
        }
        const trust = larsTrust(p, grad, o, lr);
        this.recordRate(i, trust);
        sgdUpdate(p, grad.add(p.mul(o.weightDecay)).mul(trust), buffer, firstStep, { ...o, lr, weightDecay: 0 });
      });
    });
  }
}
