/**
 * Internal covariate shift in Santurkar et al.'s definition ("How does batch normalization
 * help optimization?", NeurIPS 2018, Definition 2.1): how much a layer's gradient changes
 * because the layers below it have taken their update. At step t on batch (x, y), for layer i
 *
 *   G_i  = ∇_{W_i} L(W_1^t, …, W_k^t)
 *   G′_i = ∇_{W_i} L(W_1^{t+1}, …, W_{i−1}^{t+1}, W_i^t, …, W_k^t)
 *
 * on the same batch (the step's own dropout masks and noise), and the shift is ‖G_i − G′_i‖₂
 * with cos(G_i, G′_i). The paper finds BatchNorm networks shift as much or more than plain ones.
 *
 * The layers are the Conv2d and Linear modules in module order, each measured at its weight;
 * "below layer i" is every parameter registered before that weight (the forward order in VGG
 * and MLP; in a ResNet a block's shortcut conv counts its block's other convs as below it), so
 * a normalisation layer's γ and β move with the conv before them. One gradient evaluation per
 * layer, each only as deep as that layer.
 */
import type { Tensor } from "../tensor.ts";
import { weightLayers } from "./filter_norms.ts";
import { difference, disposeParams, dotsPerTensor } from "./param_maps.ts";
import type { StepContext } from "./probed_step.ts";

export interface LayerShift {
  /** The layer's module name. */
  name: string;
  /** ‖G_i‖₂, for scale. */
  gradNorm: number;
  /** ‖G_i − G′_i‖₂. */
  shift: number;
  /** cos(G_i, G′_i). */
  cosine: number;
}

export async function internalCovariateShift(ctx: StepContext): Promise<{ layers: LayerShift[] }> {
  const { model, before, after } = ctx.step;
  const { grads } = await ctx.gradient();
  const order = [...before.keys()];
  const layers: LayerShift[] = [];
  for (const { name, weight } of weightLayers(model)) {
    const position = order.indexOf(weight);
    const mixed = new Map(order.map((p, j) => [p, (j < position ? after : before).get(p)!]));
    const { loss, grads: shifted } = ctx.objective.valueAndGrad(mixed, [weight]);
    loss.dispose();
    const g = new Map<string, Tensor>([[weight, grads.get(weight)!]]);
    const change = difference(g, shifted);
    const [gg, hh, gh, dd] = await Promise.all([
      dotsPerTensor(g, g), dotsPerTensor(shifted, shifted), dotsPerTensor(g, shifted), dotsPerTensor(change, change),
    ]).then((maps) => maps.map((m) => m.get(weight)!));
    disposeParams(shifted);
    disposeParams(change);
    layers.push({ name, gradNorm: Math.sqrt(gg), shift: Math.sqrt(dd), cosine: gh / Math.sqrt(gg * hh) });
  }
  return { layers };
}
