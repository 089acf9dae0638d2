/**
 * A multilayer perceptron: the baseline for small inputs (MNIST-sized images, feature
 * vectors). Input of any shape [N, ...] is flattened to [N, inFeatures], then a Sequential
 * named `layers` runs Linear → ReLU → Dropout per hidden width and a final Linear, so the
 * state dict is layers.0.weight, layers.0.bias, layers.3.weight, …. `widthMultiplier` scales
 * every hidden width (for capacity sweeps: [256, 128] at 0.25 is [64, 32]).
 */
import type { Tensor } from "../../tensor.ts";
import { Module } from "../module.ts";
import { Dropout, Flatten, Linear, ReLU, Sequential } from "../layers.ts";
import { chain, type Step, stepOf } from "../chain.ts";
import { checkOptionKeys, positiveInt, positiveIntList, probability, scaleWidth, widthMultiplier } from "../checks.ts";

export interface MLPOptions {
  /** Features per sample after flattening (e.g. 784 for 1×28×28). Required. */
  inFeatures: number;
  /** Width of each hidden layer (default [256, 128]; [] gives a linear classifier). */
  hidden?: readonly number[];
  /** Output classes (default 10). */
  numClasses?: number;
  /** Dropout probability after each hidden ReLU (default 0). */
  dropout?: number;
  /** Scales every hidden width, rounded, at least 1 (default 1). */
  widthMultiplier?: number;
}

const OPTION_KEYS = ["inFeatures", "hidden", "numClasses", "dropout", "widthMultiplier"] as const;

export class MLP extends Module {
  readonly layers: Sequential;
  private readonly steps: Step[];

  constructor(opts: MLPOptions, where = "MLP") {
    super();
    const inFeatures = positiveInt(where, "inFeatures", opts.inFeatures);
    const multiplier = widthMultiplier(where, opts.widthMultiplier ?? 1);
    const hidden = positiveIntList(where, "hidden", opts.hidden ?? [256, 128], { allowEmpty: true }).map((h) => scaleWidth(h, multiplier));
    const numClasses = positiveInt(where, "numClasses", opts.numClasses ?? 10);
    const p = probability(where, "dropout", opts.dropout ?? 0);

    const layers: Module[] = [];
    let width = inFeatures;
    for (const h of hidden) {
      // Dropout is present even at p = 0 so the layer indices, and so the state-dict keys,
      // do not depend on the dropout rate: weights trained with dropout load into a p = 0
      // model for evaluation. At p = 0 it costs one reshape.
      layers.push(new Linear(width, h), new ReLU(), new Dropout(p));
      width = h;
    }
    layers.push(new Linear(width, numClasses));

    const flat = this.module("flatten", new Flatten());
    this.layers = this.module("layers", new Sequential(...layers));
    this.steps = [stepOf(flat), stepOf(this.layers)];
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.steps);
  }
}

export function mlp(opts: MLPOptions): MLP {
  return new MLP(checkOptionKeys("mlp", opts, OPTION_KEYS), "mlp");
}
