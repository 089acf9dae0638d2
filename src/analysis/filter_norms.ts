/**
 * Per-filter weight norms and the filters that have "zeroed out", the PowerGrad paper's
 * (Das et al., arXiv 2111.12495) second measure: in a network without BatchNorm, a filter
 * whose ReLU never fires gets no gradient, weight decay shrinks it towards zero, and the
 * paper reports fewer such filters under PowerGrad.
 *
 * A filter is one output unit's weights: weight[o] of a Conv2d ([O, I, kh, kw]) or a Linear
 * ([O, I]). Its norm is the L2 norm of those weights (bias excluded), summed in float64.
 *
 * "Zeroed" is relative: a filter counts when its norm is below ZEROED_FRACTION of its layer's
 * median filter norm at the same moment. Relative, because layers start at different scales
 * (He init gives a filter norm of about √(2·I/O)). The median, because it ignores the
 * outliers being counted and needs no record of the initial weights, so the same count
 * applies to any checkpoint, PyTorch's included. Why 1/20: a filter that gets no gradient
 * shrinks only by weight decay, to exp(−wd·Σ_t lr_t/(1 − μ)) of its norm (momentum μ
 * multiplies weight decay's pull by 1/(1 − μ)), while live filters stay within a small
 * factor of their layer's median. Over the paper's ImageNet schedules (100 epochs of 1250
 * steps at rates up to 0.4) that factor is far below 1/20, and 1/20 separates dead from live.
 * Short runs cannot reach it: at peak rate 0.1, μ = 0.9, wd = 5e-4 and a cosine over 20
 * epochs of 469 steps, a gradient-free filter keeps exp(−2.3) ≈ 0.1 of its norm; then the
 * count is a lower bound, and the smallest norm over its layer's median says more.
 */
import { Module } from "../nn/module.ts";
import { Conv2d, Linear } from "../nn/layers.ts";
import type { Tensor } from "../tensor.ts";

/** A filter is zeroed when its norm is below this fraction of its layer's median filter norm. */
export const ZEROED_FRACTION = 0.05;

export interface LayerFilterNorms {
  /** The layer's module name, as in the state dict (e.g. "layer1.0.conv1"). */
  name: string;
  /** The L2 norm of each output unit's weights. */
  norms: Float64Array;
}

/** The L2 norm of weight[o] for every output unit o (weight of shape [O, ...]). */
export async function filterNorms(weight: Tensor): Promise<Float64Array> {
  const values = await weight.data();
  const units = weight.shape[0];
  const size = values.length / units;
  const norms = new Float64Array(units);
  for (let o = 0; o < units; o++) {
    let squares = 0;
    for (let i = o * size; i < (o + 1) * size; i++) squares += values[i] * values[i];
    norms[o] = Math.sqrt(squares);
  }
  return norms;
}

/** The Conv2d and Linear layers of `model` in module order, with the names of their weights. */
export function weightLayers(model: Module): { name: string; weight: string; module: Conv2d | Linear }[] {
  return [...model.namedModules()]
    .filter((entry): entry is [string, Conv2d | Linear] => entry[1] instanceof Conv2d || entry[1] instanceof Linear)
    .map(([name, module]) => ({ name, weight: name ? `${name}.weight` : "weight", module }));
}

/**
 * The layers whose filters can die: weightLayers(model) except the last Linear, the
 * classifier, whose rows are class templates, not features.
 */
export function filterLayers(model: Module): { name: string; weight: string; module: Conv2d | Linear }[] {
  const layers = weightLayers(model);
  const classifier = layers.filter((l) => l.module instanceof Linear).pop();
  return layers.filter((l) => l !== classifier);
}

/** The filter norms of every layer of filterLayers(model), from the model's own weights. */
export async function modelFilterNorms(model: Module): Promise<LayerFilterNorms[]> {
  const out: LayerFilterNorms[] = [];
  for (const { name, module } of filterLayers(model)) out.push({ name, norms: await filterNorms(module.weight) });
  return out;
}

/** The median (the mean of the middle two for an even count, as numpy's). */
export function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** How many of a layer's filters are below `fraction` of the layer's median norm. */
export function countZeroed(norms: ArrayLike<number>, fraction = ZEROED_FRACTION): number {
  const threshold = fraction * median(norms);
  let count = 0;
  for (let i = 0; i < norms.length; i++) if (norms[i] < threshold) count++;
  return count;
}
