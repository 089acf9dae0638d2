/**
 * Scale-amended SGD as derived here: SGD whose rate is amended per layer (and per output
 * channel where BatchNorm follows) by a scalar approximation of the local Hessian of
 * back-matching propagation (Zhang, Chen & Liu, "Train feedforward neural network with
 * layer-wise adaptive rate via approximating back-matching propagation", arXiv 1802.09750;
 * NeurIPS 2018, "On the Local Hessian in Back-propagation").
 *
 * Derivation. Back-matching propagation walks the blocks from the top: block l, with output
 * z = f(W, x) on its input x, gets a target z^b and the local loss
 *   J(W) = 1/(2N)·Σₙ ‖f(W, xₙ) − z^bₙ‖².
 * With the top target z − η·N·∂ℓ/∂z (ℓ the batch-mean loss) and each block's target passed
 * down by minimising J over x, ∇J(W) = η·∂ℓ/∂W at the current weights: one unit gradient
 * step on every J is backprop's SGD step. A Newton step on J instead moves W by
 * −η·H⁻¹·∂ℓ/∂W, with the Gauss–Newton local Hessian H = (1/N)·Σₙ JₙᵀJₙ (Jₙ = ∂zₙ/∂W), whose
 * conditioning is what the paper relates to how well backprop does. Approximating H by the
 * scalar h·I with h = tr(H)/dim(W) gives SGD with the block's rate η/h:
 *   linear layer:        h = E[x²], the mean square of its inputs (curvature.ts);
 *   convolution:         h = (output positions)·E[patch²] ≈ H_out·W_out·E[x²], exactly as
 *                        curvature.ts computes it (weights are shared across positions, so
 *                        each meets all of them);
 *   their biases:        h = 1 (linear), H_out·W_out (convolution);
 *   conv/linear followed by BatchNorm, per output channel j: the block y_j = γ_j·(z_j − μ_j)/σ_j
 *                        + β_j is invariant to the scale of w_j, ∂y_j/∂w_j ≈ (γ_j/σ_j)·x, and
 *                        with σ_j² ≈ ‖w_j‖²·Var(x) (inputs taken as isotropic) h_j ≈ γ_j²/‖w_j‖²,
 *                        so the rate is η·‖w_j‖²/γ_j². Plain SGD's effective (angular) rate on a
 *                        scale-invariant w_j is η/‖w_j‖²; the amended one is η/γ_j², the same
 *                        pace for every channel of equal γ. The bias before a BatchNorm has no
 *                        effect on its output and keeps η;
 *   BatchNorm's γ, β and any other parameter: keep η.
 * Guards: h and γ² enter as max(·, ε); every multiplier (1/h, ‖w_j‖²/γ_j²) is clamped to
 * [clamp[0], clamp[1]] (default [1e-2, 1e2]). Statistics come from the current batch, taken
 * during the training forward itself without the tape (curvature.ts), optionally smoothed by
 * an EMA across steps (statsMomentum, state `hessian_ema`). The amended gradient
 * multiplier·(g + λw) then takes torch.optim.SGD's momentum step (sgd.ts), as LARS does.
 *
 * Not verified against the paper (only its abstract and reviews were reachable; no code of
 * the authors' is known): whether it amends per layer or per output channel; whether γ²
 * enters; the output positions: the trace above carries H_out·W_out for a convolution, and
 * the same derivation would carry it in the BatchNorm form too (h_j ≈ γ_j²·H_out·W_out/‖w_j‖²),
 * which this form, as specified for the project, leaves out; per-batch statistics or an EMA;
 * ε and the clamp; momentum in the amended arm as in plain SGD's.
 */
import { ValueError } from "../errors.ts";
import { full, type Tensor, tidy } from "../tensor.ts";
import { div } from "../ops/elementwise.ts";
import "../ops/methods.ts";
import type { Module } from "../nn/module.ts";
import { checkSgdOptions, MomentumOptimizer, type SGDConfig, sgdDefaults, type SGDGroupOptions, sgdUpdate } from "./sgd.ts";
import type { StateNames } from "./base.ts";
import { CurvatureProbe } from "./curvature.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export interface ScaleAmendedConfig extends SGDConfig {
  /** The model whose layers are amended (its forward passes are observed through hooks). */
  model: Module;
  /** Bounds of every multiplier (default [1e-2, 1e2]). */
  clamp?: readonly [number, number];
  /** Floor of h and γ² (default 1e-8). */
  eps?: number;
  /** EMA momentum of h across steps (0, the default: this batch's only). */
  statsMomentum?: number;
}

const HESSIAN_EMA = "hessian_ema";

export class ScaleAmendedSGD extends MomentumOptimizer<SGDGroupOptions> {
  readonly clamp: readonly [number, number];
  readonly eps: number;
  readonly statsMomentum: number;
  private readonly probe: CurvatureProbe;

  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<SGDGroupOptions>[], config: ScaleAmendedConfig) {
    super("ScaleAmendedSGD", params, config.lr, sgdDefaults(config), false, checkSgdOptions);
    this.clamp = config.clamp ?? [1e-2, 1e2];
    this.eps = config.eps ?? 1e-8;
    this.statsMomentum = config.statsMomentum ?? 0;
    const [lo, hi] = this.clamp;
    if (!(lo > 0 && hi >= lo && Number.isFinite(hi))) throw new ValueError(`ScaleAmendedSGD: clamp must be [lo, hi] with 0 < lo ≤ hi < ∞, got ${JSON.stringify(config.clamp)}`);
    if (!(this.eps > 0)) throw new ValueError(`ScaleAmendedSGD: eps must be > 0, got ${this.eps}`);
    if (!(this.statsMomentum >= 0 && this.statsMomentum < 1)) throw new ValueError(`ScaleAmendedSGD: statsMomentum must be in [0, 1), got ${this.statsMomentum}`);
    this.probe = new CurvatureProbe(config.model);
  }

  protected stateNames(i: number): StateNames {
    return { ...super.stateNames(i), optional: [HESSIAN_EMA] };
  }

  protected stateShape(i: number, name: string): readonly number[] {
    return name === HESSIAN_EMA ? [] : super.stateShape(i, name);
  }

  /** Stop observing the model's forward passes. */
  removeHooks(): void {
    this.probe.removeHooks();
  }

  step(): void {
    this.forEachWithGrad((p, grad, i, o, lr) => {
      const { buffer, firstStep } = this.momentumBuffer(i);
      tidy(() => {
        const multiplier = this.multiplier(i);
        this.recordRate(i, multiplier);
        const amended = multiplier ? grad.add(p.mul(o.weightDecay)).mul(multiplier) : grad;
        sgdUpdate(p, amended, buffer, firstStep, { ...o, lr, weightDecay: multiplier ? 0 : o.weightDecay });
      });
    });
    this.probe.endStep();
  }

  /** Parameter i's multiplier this step (a scalar or per-channel tensor), null where it keeps η. */
  private multiplier(i: number): Tensor | null {
    const p = this.params[i];
    const role = this.probe.roleOf(p);
    if (!role) return null;
    const { layer } = role;
    if (!layer.seen) {
      throw new ValueError(`ScaleAmendedSGD: layer "${layer.name}" has no statistics yet: step() must follow a training-mode forward pass of the model`);
    }
    const [lo, hi] = this.clamp;
    if (role.role === "bias") {
      return layer.norm ? null : full([], Math.min(hi, Math.max(lo, 1 / layer.positions)), p.backend);
    }
    if (layer.norm) {
      const perChannel = [p.shape[0], ...p.shape.slice(1).map(() => 1)];
      const weightNorms = p.square().sum(Array.from({ length: p.rank - 1 }, (_, k) => k + 1), true);
      return weightNorms.div(layer.norm.weight.square().maximum(this.eps).reshape(perChannel)).clamp(lo, hi);
    }
    return div(1, this.smoothed(i, layer.curvature!).maximum(this.eps)).clamp(lo, hi);
  }

  /** h, or its EMA across steps when statsMomentum > 0 (state `hessian_ema`). */
  private smoothed(i: number, h: Tensor): Tensor {
    if (this.statsMomentum === 0) return h;
    const first = !this.hasState(i, HESSIAN_EMA);
    const ema = this.stateTensor(i, HESSIAN_EMA, () => full([], 0, h.backend));
    if (first) ema.copy_(h);
    else ema.mul_(this.statsMomentum).add_(h, 1 - this.statsMomentum);
    return ema;
  }
}
