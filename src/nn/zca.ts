/**
 * ZCA whitening of groups of channels as a layer usable in place of BatchNorm2d (Wang, Nie,
 * Salzmann & Fua, "Backpropagation-Friendly Eigendecomposition", NeurIPS 2019): in training
 * each group of `groupSize` channels is centred and whitened with its batch covariance
 * (ops/zca.ts), whose eigendecomposition is differentiated by power iteration (default) or
 * analytically; then a per-channel affine γ·y + β as in BatchNorm. Like BatchNorm it keeps
 * running averages, of the mean and of the unbiased group covariance (momentum 0.1), and
 * evaluation whitens with those; inside frozenStats (frozen_stats.ts) they stay as they are,
 * as BatchNorm's do. Tensor ops throughout, so it runs on every backend.
 */
import { ValueError } from "../errors.ts";
import { full, tensor, type Tensor, zeros } from "../tensor.ts";
import { add, mul, scale } from "../ops/elementwise.ts";
import { reshape } from "../ops/shape.ts";
import { type ZcaStatistics, zcaWhiten, zcaWhitenWith } from "../ops/zca.ts";
import type { EighBackward } from "../ops/eigh.ts";
import { Module } from "./module.ts";
import { BatchNorm2d } from "./layers.ts";
import { positiveInt } from "./checks.ts";

export interface ZCAWhitening2dOptions {
  /** Channels per whitened group (default 4; must divide the channel count). */
  groupSize?: number;
  /** Added to each group covariance's diagonal (default 1e-5). */
  eps?: number;
  /** Weight of the newest batch in the running statistics (default 0.1). */
  momentum?: number;
  /** The eigendecomposition's backward (default "power-iteration"). */
  backward?: EighBackward;
  /** Its power-iteration steps (default 19). */
  iterations?: number;
}

export class ZCAWhitening2d extends Module {
  /** Open frozenStats() scopes over this module (> 0: the running statistics stay as they are). */
  statsFrozen = 0;
  readonly groupSize: number;
  private readonly eps: number;
  private readonly momentum: number;
  private readonly backward: EighBackward;
  private readonly iterations: number;

  constructor(readonly numFeatures: number, opts: ZCAWhitening2dOptions = {}) {
    super();
    positiveInt("ZCAWhitening2d", "numFeatures", numFeatures);
    this.groupSize = positiveInt("ZCAWhitening2d", "groupSize", opts.groupSize ?? Math.min(4, numFeatures));
    if (numFeatures % this.groupSize !== 0) {
      throw new ValueError(`ZCAWhitening2d: groupSize ${this.groupSize} does not divide the ${numFeatures} channels`);
    }
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.backward = opts.backward ?? "power-iteration";
    this.iterations = opts.iterations ?? 19;
    if (!(this.eps > 0)) throw new ValueError(`ZCAWhitening2d: eps must be > 0, got ${this.eps}`);
    if (!(this.momentum > 0 && this.momentum <= 1)) throw new ValueError(`ZCAWhitening2d: momentum must be in (0, 1], got ${this.momentum}`);
    if (this.backward !== "power-iteration" && this.backward !== "analytic") {
      throw new ValueError(`ZCAWhitening2d: backward must be "power-iteration" or "analytic", got ${JSON.stringify(this.backward)}`);
    }
    const g = this.groupSize;
    this.param("weight", full([numFeatures], 1));
    this.param("bias", zeros([numFeatures]));
    this.buffer("running_mean", zeros([numFeatures]));
    const identity = new Float32Array(numFeatures * g);
    for (let i = 0; i < numFeatures; i++) identity[i * g + (i % g)] = 1;
    this.buffer("running_cov", tensor(identity, [numFeatures / g, g, g]));
  }
  get weight(): Tensor {
    return this.tensor("weight")!;
  }
  get bias(): Tensor {
    return this.tensor("bias")!;
  }
  get runningMean(): Tensor {
    return this.tensor("running_mean")!;
  }
  get runningCov(): Tensor {
    return this.tensor("running_cov")!;
  }

  forward(x: Tensor): Tensor {
    const opts = { groupSize: this.groupSize, eps: this.eps, backward: this.backward, iterations: this.iterations };
    const whitened = this.training
      ? zcaWhiten(x, opts, (s) => this.statsFrozen > 0 || BatchNorm2d.statsFrozenEverywhere > 0 || this.track(s, x.size / x.shape[1]))
      : zcaWhitenWith(x, { mean: this.runningMean, covariance: this.runningCov }, opts);
    const perChannel = [1, this.numFeatures, 1, 1];
    const scaled = mul(whitened, reshape(this.weight, perChannel));
    const out = add(scaled, reshape(this.bias, perChannel));
    whitened.dispose();
    scaled.dispose();
    return out;
  }

  /** running ← (1 − momentum)·running + momentum·batch, with the covariance made unbiased (m/(m − 1)). */
  private track({ mean, covariance }: ZcaStatistics, samples: number): void {
    const blend = (running: Tensor, batch: Tensor, factor: number) => {
      const kept = scale(running, 1 - this.momentum), added = scale(batch, this.momentum * factor);
      const next = add(kept, added);
      running.copy_(next);
      for (const t of [kept, added, next]) t.dispose();
    };
    blend(this.runningMean, mean, 1);
    blend(this.runningCov, covariance, samples / (samples - 1));
  }
}
