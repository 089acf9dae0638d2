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
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    positiveInt("Linear", "inFeatures", inFeatures);
    positiveInt("Linear", "outFeatures", outFeatures);
    this.weight = this.param("weight", defaultWeight_(empty([outFeatures, inFeatures])));
    this.bias = opts.bias === false ? null : this.param("bias", defaultBias(this.weight, outFeatures));
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
  readonly weight: Tensor;
  readonly bias: Tensor | null;
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
    this.weight = this.param("weight", defaultWeight_(empty([outChannels, inChannels / groups, kh, kw])));
    this.bias = opts.bias === false ? null : this.param("bias", defaultBias(this.weight, outChannels));
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.opts);
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  /** JS mirror of num_batches_tracked, so counting needs no device read-back. */
  private tracked = 0;
  constructor(readonly numFeatures: number, readonly opts: { eps?: number; momentum?: number } = {}) {
    super();
    positiveInt("BatchNorm2d", "numFeatures", numFeatures);
    this.weight = this.param("weight", full([numFeatures], 1));
    this.bias = this.param("bias", zeros([numFeatures]));
    this.runningMean = this.buffer("running_mean", zeros([numFeatures]));
    this.runningVar = this.buffer("running_var", full([numFeatures], 1));
    this.numBatchesTracked = this.buffer("num_batches_tracked", zeros([]));
    this.numBatchesTracked.dtype = "int64";
  }
  forward(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, this.step());
  }
  /**
   * relu(residual + this.forward(x)) as one fused op (ops/norm.ts batchNormRelu), for models
   * whose BatchNorm feeds a ReLU. It bypasses forward(), so callers use it only while this
   * module has no hooks (see models/common.ts bnRelu).
   */
  forwardRelu(x: Tensor, residual: Tensor | null = null): Tensor {
    return batchNormRelu(x, this.weight, this.bias, this.runningMean, this.runningVar, this.step(), residual);
  }
  /** The options of one forward pass, counting it in num_batches_tracked when training. */
  private step(): BatchNormOptions {
    if (this.training) {
      this.tracked++;
      this.numBatchesTracked.fill_(this.tracked);
    }
    return { training: this.training, momentum: this.opts.momentum, eps: this.opts.eps };
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
}
