/**
 * The layers a convnet is built from, each a thin Module over one op, with PyTorch's
 * parameter names, shapes and default initialisation (so `Conv2d.weight` is
 * [out, in/groups, kh, kw] and `BatchNorm2d` keeps running_mean, running_var and
 * num_batches_tracked).
 */
import { Module } from "./module.ts";
import { defaultWeight_, fans, uniform_ } from "./init.ts";
import { empty, full, Tensor, zeros } from "../tensor.ts";
import { ValueError } from "../errors.ts";
import { linear } from "../ops/linalg.ts";
import { conv2d, type Conv2dOptions as Conv2dOpOptions, type Pair } from "../ops/conv.ts";
import { batchNorm, batchNormRelu, type BatchNormOptions } from "../ops/norm.ts";
import { relu, sigmoid } from "../ops/elementwise.ts";
import { avgPool2d, globalAvgPool2d, maxPool2d, type Pool2dOptions } from "../ops/pool.ts";
import { flatten, reshape } from "../ops/shape.ts";
import { dropout } from "../ops/dropout.ts";
import { chain, stepOf } from "./chain.ts";
import { positiveInt, probability } from "./checks.ts";

/** PyTorch's bias default: U(−1/√fan_in, 1/√fan_in) of the layer's weight. */
function defaultBias(weight: Tensor, size: number): Tensor {
  const bound = 1 / Math.sqrt(fans(weight).fanIn);
  return uniform_(empty([size]), -bound, bound);
}

export class Linear extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    positiveInt("Linear", "inFeatures", inFeatures);
    positiveInt("Linear", "outFeatures", outFeatures);
    const weight = this.param("weight", defaultWeight_(empty([outFeatures, inFeatures])));
    if (opts.bias !== false) this.param("bias", defaultBias(weight, outFeatures));
  }
  get weight(): Tensor {
    return this.tensor("weight")!;
  }
  get bias(): Tensor | null {
    return this.tensor("bias");
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** The op's options (stride, padding, dilation, groups) and whether the layer has a bias. */
export interface Conv2dOptions extends Conv2dOpOptions {
  bias?: boolean;
}

export class Conv2d extends Module {
  constructor(
    readonly inChannels: number, readonly outChannels: number, readonly kernelSize: Pair,
    readonly opts: Conv2dOptions = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    positiveInt("Conv2d", "inChannels", inChannels);
    positiveInt("Conv2d", "outChannels", outChannels);
    if (inChannels % groups || outChannels % groups) {
      throw new ValueError(`Conv2d: groups=${groups} must divide inChannels=${inChannels} and outChannels=${outChannels}`);
    }
    const [kh, kw] = typeof kernelSize === "number" ? [kernelSize, kernelSize] : kernelSize;
    const weight = this.param("weight", defaultWeight_(empty([outChannels, inChannels / groups, kh, kw])));
    if (opts.bias !== false) this.param("bias", defaultBias(weight, outChannels));
  }
  get weight(): Tensor {
    return this.tensor("weight")!;
  }
  get bias(): Tensor | null {
    return this.tensor("bias");
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }
}

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
  /**
   * Keep running statistics (default true). false: no running_mean, running_var or
   * num_batches_tracked, and the batch statistics normalise in evaluation mode too (PyTorch's
   * track_running_stats=False).
   */
  trackRunningStats?: boolean;
}

/**
 * BatchNorm over channels (PyTorch's BatchNorm2d, also for [N, C] and [N, C, L] inputs). Its
 * running statistics can be frozen for a while (nn/frozen_stats.ts): a training-mode forward
 * then normalises by the batch statistics but moves neither the running statistics nor
 * num_batches_tracked, so a probe's extra forward pass leaves the run's state as it was.
 */
export class BatchNorm2d extends Module {
  /** JS mirror of num_batches_tracked, so counting needs no device read-back. */
  private tracked = 0;
  /** Open frozenStats() scopes over this module (> 0: the running statistics stay as they are). */
  statsFrozen = 0;
  /** Open frozenStats() scopes over every BatchNorm (a recomputed forward: memory/checkpoint.ts). */
  static statsFrozenEverywhere = 0;
  readonly trackRunningStats: boolean;

  constructor(readonly numFeatures: number, readonly opts: BatchNorm2dOptions = {}) {
    super();
    positiveInt("BatchNorm2d", "numFeatures", numFeatures);
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.param("weight", full([numFeatures], 1));
    this.param("bias", zeros([numFeatures]));
    if (this.trackRunningStats) {
      this.buffer("running_mean", zeros([numFeatures]));
      this.buffer("running_var", full([numFeatures], 1));
      this.buffer("num_batches_tracked", zeros([])).dtype = "int64";
    }
  }
  get weight(): Tensor {
    return this.tensor("weight")!;
  }
  get bias(): Tensor {
    return this.tensor("bias")!;
  }
  get runningMean(): Tensor | null {
    return this.tensor("running_mean");
  }
  get runningVar(): Tensor | null {
    return this.tensor("running_var");
  }
  get numBatchesTracked(): Tensor | null {
    return this.tensor("num_batches_tracked");
  }
  forward(x: Tensor): Tensor {
    const { opts, running } = this.step();
    return batchNorm(x, this.weight, this.bias, running?.mean ?? null, running?.var ?? null, opts);
  }
  /**
   * relu(residual + this.forward(x)) as one fused op (ops/norm.ts batchNormRelu), for models
   * whose BatchNorm feeds a ReLU. It bypasses forward(), so callers use it only while this
   * module has no hooks (see models/common.ts bnRelu).
   */
  forwardRelu(x: Tensor, residual: Tensor | null = null): Tensor {
    const { opts, running } = this.step();
    return batchNormRelu(x, this.weight, this.bias, running?.mean ?? null, running?.var ?? null, opts, residual);
  }
  /**
   * One forward pass's options and the running statistics it reads (evaluation) or moves
   * (training; none while frozen), counting it in num_batches_tracked when they move.
   */
  private step(): { opts: BatchNormOptions; running: { mean: Tensor; var: Tensor } | null } {
    const batchStatistics = this.training || !this.trackRunningStats;
    const opts = { training: batchStatistics, momentum: this.opts.momentum, eps: this.opts.eps };
    const mean = this.runningMean, variance = this.runningVar;
    const frozen = this.statsFrozen > 0 || BatchNorm2d.statsFrozenEverywhere > 0;
    if (!mean || !variance || (this.training && frozen)) return { opts, running: null };
    if (this.training) this.numBatchesTracked?.fill_(++this.tracked);
    return { opts, running: { mean, var: variance } };
  }
  protected override afterLoad(loaded: (name: string) => Tensor | undefined): void {
    const source = loaded("num_batches_tracked");
    if (source) this.tracked = source.dataSync()[0];
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** Shared by the pooling layers: a window op with kernel, stride (default: kernel) and padding. */
abstract class Pool2d extends Module {
  constructor(readonly kernel: Pair, readonly stride?: Pair, readonly padding: Pair = 0) {
    super();
  }
  protected abstract pool(x: Tensor, opts: Pool2dOptions): Tensor;
  forward(x: Tensor): Tensor {
    return this.pool(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

export class MaxPool2d extends Pool2d {
  protected pool(x: Tensor, opts: Pool2dOptions): Tensor {
    return maxPool2d(x, opts);
  }
}

/** Average pooling (PyTorch's count_include_pad=True). */
export class AvgPool2d extends Pool2d {
  protected pool(x: Tensor, opts: Pool2dOptions): Tensor {
    return avgPool2d(x, opts);
  }
}

/** AdaptiveAvgPool2d with output size 1: the mean of each plane. */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    return globalAvgPool2d(x);
  }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    return flatten(x);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    probability("Dropout", "p", p);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return reshape(x, x.shape);
  }
}

/** Children named "0", "1", ... run in order, each intermediate freed as soon as it is used. */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.module(String(i), m));
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.layers.map(stepOf));
  }
  protected override childReplaced(name: string, replacement: Module): void {
    this.layers[Number(name)] = replacement;
  }
}
