/**
 * ℓp normalisation, the alternative to BatchNorm that Santurkar, Tsipras, Ilyas and Madry ("How
 * does batch normalization help optimization?", NeurIPS 2018) show smooths the loss landscape
 * as well as BatchNorm does while giving no control over the activations' mean and variance:
 * per channel, the activations are centred by their batch mean and divided by their average ℓp
 * norm over the batch (and the spatial positions), then scaled and shifted by a learnt γ and β.
 *
 * With c = x − mean(x) over the channel's m values, the divisor is
 *   p = 1:  mean|c| + ε
 *   p = 2:  √(mean c² + ε)       (exactly BatchNorm's training-mode normalisation)
 *   p = ∞:  max|c| + ε
 * i.e. ‖c‖_p / m^(1/p), the ℓp norm taken as an average. Like BatchNorm with
 * track_running_stats=False it keeps no running statistics: the batch statistics normalise in
 * evaluation too, so nothing in it moves outside the tape and a probe's extra forward pass
 * changes nothing. Parameters are named as BatchNorm's (weight, bias), built from the generic
 * op tier, so the gradient is the composed ops' on either backend.
 */
import { Module } from "./module.ts";
import { full, type Tensor, zeros } from "../tensor.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { add, div, mul, sub } from "../ops/elementwise.ts";
import { abs, sqrt, square } from "../ops/unary.ts";
import { amax, mean } from "../ops/reduce.ts";
import { reshape } from "../ops/shape.ts";
import { fmt } from "../ops/util.ts";
import { positiveInt } from "./checks.ts";

/** The norms the layer takes: ℓ1, ℓ2 and ℓ∞ (Infinity). */
export type LpOrder = 1 | 2 | typeof Infinity;

export class LpNorm2d extends Module {
  constructor(readonly numFeatures: number, readonly p: LpOrder, readonly eps = 1e-5) {
    super();
    positiveInt("LpNorm2d", "numFeatures", numFeatures);
    if (p !== 1 && p !== 2 && p !== Infinity) throw new ValueError(`LpNorm2d: p must be 1, 2 or Infinity, got ${p}`);
    if (!(eps >= 0)) throw new ValueError(`LpNorm2d: eps must be ≥ 0, got ${eps}`);
    this.param("weight", full([numFeatures], 1));
    this.param("bias", zeros([numFeatures]));
  }

  get weight(): Tensor {
    return this.tensor("weight")!;
  }
  get bias(): Tensor {
    return this.tensor("bias")!;
  }

  forward(x: Tensor): Tensor {
    if ((x.rank !== 2 && x.rank !== 4) || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`LpNorm2d(${this.numFeatures}): input must be [N, ${this.numFeatures}] or [N, ${this.numFeatures}, H, W], got ${fmt(x.shape)}`);
    }
    const axes = x.rank === 4 ? [0, 2, 3] : [0];
    const channel = x.rank === 4 ? [1, this.numFeatures, 1, 1] : [1, this.numFeatures];
    const centred = sub(x, mean(x, axes, true));
    const divisor = this.divisor(centred, axes);
    const normalised = div(centred, divisor);
    const gamma = reshape(this.weight, channel);
    const beta = reshape(this.bias, channel);
    const scaled = mul(normalised, gamma);
    const y = add(scaled, beta);
    for (const t of [centred, divisor, normalised, gamma, beta, scaled]) t.dispose();
    return y;
  }

  /** The channel's average ℓp norm of the centred values, with ε (see the file's header). */
  private divisor(centred: Tensor, axes: number[]): Tensor {
    const magnitude = this.p === 2 ? square(centred) : abs(centred);
    const norm = this.p === Infinity ? amax(magnitude, axes, true) : mean(magnitude, axes, true);
    const withEps = add(norm, this.eps);
    const out = this.p === 2 ? sqrt(withEps) : withEps;
    magnitude.dispose();
    norm.dispose();
    if (out !== withEps) withEps.dispose();
    return out;
  }
}
