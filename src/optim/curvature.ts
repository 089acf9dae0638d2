/**
 * The statistics scale-amended SGD needs (scale_amended.ts), gathered from the training
 * forward pass itself by forward hooks: for every convolution and linear layer, the scalar
 * h = tr(H)/dim(W) of its Gauss–Newton local Hessian, H = (1/N)·Σₙ JₙᵀJₙ with Jₙ = ∂zₙ/∂W,
 * which depends only on the layer's input x:
 *   linear (z = Wx):   h = (1/N)·Σₙ ‖xₙ‖² / F_in, the mean square of the inputs;
 *   convolution:       h = (1/N)·Σₙ Σ_p ‖patchₙ,ₚ‖² / (C_in·K_h·K_w), i.e. the output positions
 *                      times the mean square of the patch entries (zero padding included),
 *                      computed exactly as the sum of a convolution of Σ_c x² with a ones
 *                      kernel of the layer's stride, padding and dilation (with groups, each
 *                      filter sees C_in/G channels and has C_in/G·K weights: G cancels);
 * and whether a BatchNorm normalises the layer's output directly (the BatchNorm's input is
 * the very tensor the layer returned), which changes the rule. Computed under noGrad (the
 * tape never sees it), in training-mode forwards with the tape on only, so evaluation passes
 * leave the statistics of the last training batch in place; no extra forward, and the
 * running statistics are untouched. A layer followed by BatchNorm needs no h and skips it
 * once the pairing is known.
 */
import { isGradEnabled, noGrad } from "../autograd.ts";
import { keep, ones, type Tensor, tidy } from "../tensor.ts";
import { conv2d } from "../ops/conv.ts";
import "../ops/methods.ts";
import type { Module } from "../nn/module.ts";
import { BatchNorm2d, Conv2d, Linear } from "../nn/layers.ts";

export interface CurvatureLayer {
  readonly name: string;
  readonly module: Conv2d | Linear;
  /** The BatchNorm fed directly by this layer's output (known after a training forward). */
  norm: BatchNorm2d | null;
  /** h of the last training forward (0-d tensor), or null (none yet, or a BatchNorm follows). */
  curvature: Tensor | null;
  /** Output positions per sample in the last training forward (H_out·W_out; 1 for linear). */
  positions: number;
  /** Has a training forward run through this layer? */
  seen: boolean;
}

/** h of a layer for input x (a new 0-d tensor). */
function curvatureOf(module: Conv2d | Linear, x: Tensor): Tensor {
  const n = x.shape[0];
  if (module instanceof Linear) return x.square().sum().div(n * module.inFeatures);
  const [, , kh, kw] = module.weight.shape;
  const squares = x.square().sum([1], true);
  const kernel = ones([1, 1, kh, kw], x.backend);
  const { stride, padding, dilation } = module.opts;
  return conv2d(squares, kernel, null, { stride, padding, dilation }).sum().div(n * x.shape[1] * kh * kw);
}

export class CurvatureProbe {
  /** Convolution and linear layers by their weight and bias tensors. */
  private readonly byParam = new Map<Tensor, { layer: CurvatureLayer; role: "weight" | "bias" }>();
  /** Outputs of the current forward's layers, for pairing with a following BatchNorm. */
  private readonly outputs = new Map<Tensor, CurvatureLayer>();
  private readonly hooks: { remove(): void }[] = [];

  constructor(readonly model: Module) {
    for (const [name, module] of model.namedModules()) {
      if (module instanceof Conv2d || module instanceof Linear) {
        const layer: CurvatureLayer = { name, module, norm: null, curvature: null, positions: 1, seen: false };
        this.byParam.set(module.weight, { layer, role: "weight" });
        if (module.bias) this.byParam.set(module.bias, { layer, role: "bias" });
        this.hooks.push(module.registerForwardHook((_, input, output) => this.observeLayer(layer, input, output)));
      } else if (module instanceof BatchNorm2d) {
        this.hooks.push(module.registerForwardHook((m, input) => this.observeNorm(m as BatchNorm2d, input)));
      }
    }
  }

  /** The layer a parameter belongs to and its role there, or null (BatchNorm's γ, β and others). */
  roleOf(p: Tensor): { layer: CurvatureLayer; role: "weight" | "bias" } | null {
    return this.byParam.get(p) ?? null;
  }

  /** Forget the pairing candidates of the forward just done (called at each step). */
  endStep(): void {
    this.outputs.clear();
  }

  removeHooks(): void {
    for (const h of this.hooks) h.remove();
    this.hooks.length = 0;
    for (const { layer } of this.byParam.values()) layer.curvature?.dispose();
  }

  private observeLayer(layer: CurvatureLayer, input: Tensor, output: Tensor): void {
    if (!layer.module.training || !isGradEnabled()) return;
    layer.seen = true;
    layer.positions = output.size / (output.shape[0] * output.shape[1]);
    this.outputs.set(output, layer);
    if (layer.norm) return;
    const h = noGrad(() => tidy(() => curvatureOf(layer.module, input)));
    layer.curvature?.dispose();
    layer.curvature = keep(h);
  }

  private observeNorm(norm: BatchNorm2d, input: Tensor): void {
    if (!norm.training || !isGradEnabled()) return;
    const layer = this.outputs.get(input);
    if (!layer) return;
    layer.norm = norm;
    layer.curvature?.dispose();
    layer.curvature = null;
  }
}
