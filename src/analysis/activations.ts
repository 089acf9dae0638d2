/**
 * The distribution of chosen layers' activations over training: Santurkar et al.'s figure of
 * activation histograms with and without (noisy) BatchNorm. At a step, the model runs forward
 * at W^t on the step's batch (objective.ts: the step's own dropout masks and noise, BatchNorm
 * statistics frozen), and the output of each chosen module is summarised over all its
 * elements (every sample, channel and position): mean, standard deviation (divisor n), min,
 * max, quantiles at QUANTILE_LEVELS (linear interpolation between order statistics, as
 * numpy's and torch.quantile's default) and a histogram of `bins` equal bins over [min, max].
 *
 * The default layers are the input of every nonlinearity: each normalisation layer's output
 * when the model has them (with the noise of noisy BatchNorm), else each conv's and hidden
 * linear layer's output. With or without BatchNorm the k-th entry is then the k-th conv's
 * pre-activation, so runs with and without it compare layer by layer.
 */
import { ValueError } from "../errors.ts";
import { cloneData, keep, type Tensor } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import { BatchNorm2d } from "../nn/layers.ts";
import { filterLayers } from "./filter_norms.ts";
import { LpNorm2d } from "../nn/lp_norm.ts";
import type { StepContext } from "./probed_step.ts";

export const QUANTILE_LEVELS: readonly number[] = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98];

export interface ActivationStats {
  name: string;
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** At QUANTILE_LEVELS. */
  quantiles: number[];
  /** Equal bins over [min, max]. */
  histogram: number[];
}

/** Names of the modules whose outputs the probe summarises by default (see the file's header). */
export function defaultActivationLayers(model: Module): string[] {
  const modules = [...model.namedModules()];
  const norms = modules.filter(([, m]) => m instanceof BatchNorm2d || m instanceof LpNorm2d);
  if (norms.length > 0) return norms.map(([name]) => name);
  return filterLayers(model).map((l) => l.name);
}

/** Quantile `q` of sorted values, interpolated linearly between order statistics. */
export function quantileOfSorted(sorted: ArrayLike<number>, q: number): number {
  const position = q * (sorted.length - 1);
  const lo = Math.floor(position);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (position - lo) * (sorted[hi] - sorted[lo]);
}

/** The summary of one layer's values. */
export function summarise(name: string, values: Float32Array, bins: number): ActivationStats {
  const sorted = Float32Array.from(values).sort();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (sorted[i] - mean) ** 2;
  const min = sorted[0], max = sorted[n - 1];
  const histogram = new Array<number>(bins).fill(0);
  const width = (max - min) / bins;
  for (let i = 0; i < n; i++) histogram[width > 0 ? Math.min(bins - 1, Math.floor((sorted[i] - min) / width)) : 0]++;
  return {
    name, count: n, mean, std: Math.sqrt(squares / n), min, max,
    quantiles: QUANTILE_LEVELS.map((q) => quantileOfSorted(sorted, q)), histogram,
  };
}

export async function activationStatistics(ctx: StepContext, layers: readonly string[], bins = 32): Promise<{ layers: ActivationStats[] }> {
  const { model, before } = ctx.step;
  const modules = layers.map((name) => model.getModule(name));
  if (modules.length === 0) throw new ValueError("activations probe: no layers to measure");
  const captured = new Map<number, Tensor>();
  const hooks = modules.map((m, i) => m.registerForwardHook((_module, _input, output) => {
    captured.get(i)?.dispose(); // a module run twice in one pass: its last output counts
    captured.set(i, keep(cloneData(output)));
  }));
  try {
    ctx.objective.logits(before).dispose();
  } finally {
    hooks.forEach((h) => h.remove());
  }
  try {
    const stats: ActivationStats[] = [];
    for (let i = 0; i < layers.length; i++) {
      const t = captured.get(i);
      if (!t) throw new ValueError(`activations probe: module "${layers[i]}" did not run in the forward pass`);
      stats.push(summarise(layers[i], await t.data(), bins));
    }
    return { layers: stats };
  } finally {
    for (const t of captured.values()) t.dispose();
  }
}
