/**
 * What the trainer and checkpoints know of an optimiser: parameter groups, each with its own
 * learning-rate scale (the schedule sets one base rate; group g steps at lr × g.lrScale, so a
 * schedule applies to every group, as torch.optim's schedulers do), a step, zeroGrad, and its
 * state as tensors under PyTorch's state-dict names (`state.<i>.momentum_buffer`,
 * `state.<i>.exp_avg`, i counting parameters across groups in order). Every optimiser in
 * optim/ implements it (base.ts holds what they share).
 */
import { Tensor } from "../tensor.ts";
import { ValueError } from "../errors.ts";

export interface ParamGroup<O> {
  readonly params: readonly Tensor[];
  /** This group's rate is the optimiser's lr times this. */
  lrScale: number;
  /** The group's hyper-parameters: the optimiser's defaults overridden by the group's own. */
  readonly options: O;
}

/** A group as a user gives it: its parameters, optionally a rate scale and option overrides. */
export type ParamGroupSpec<O> = { params: Iterable<Tensor>; lrScale?: number } & Partial<O>;

/**
 * A parameter's rate in the last step: the group's rate and, for optimisers that adapt it per
 * layer (LARS's and LAMB's trust ratio, scale-amended SGD's multiplier), the factor applied
 * on top, a scalar or one value per output channel (kept until the next step).
 */
export interface LayerRate {
  readonly param: Tensor;
  readonly lr: number;
  readonly factor: Tensor | null;
}

export interface Optimizer {
  /** The base learning rate (what a schedule sets). */
  lr: number;
  readonly paramGroups: readonly ParamGroup<unknown>[];
  /** Every parameter in group order: the index of PyTorch's state names. */
  readonly params: readonly Tensor[];
  /** Update every parameter that has a gradient. */
  step(): void;
  /** Drop every parameter's gradient. */
  zeroGrad(): void;
  /** State by PyTorch's names (live tensors). */
  stateDict(): Map<string, Tensor>;
  loadStateDict(state: Map<string, Tensor>): void;
  /** The rates of the last step, for parameters that had a gradient (rates.ts logs them). */
  layerRates?(): LayerRate[];
}

/**
 * Groups from what a user passed: a plain list of parameters is one group; a list of group
 * specs gives each its own scale and overrides of `defaults`. Every parameter must require
 * grad and appear once.
 */
export function makeParamGroups<O extends object>(
  where: string, params: Iterable<Tensor> | readonly ParamGroupSpec<O>[], defaults: O,
): ParamGroup<O>[] {
  const items = [...params as Iterable<Tensor | ParamGroupSpec<O>>];
  const specs: ParamGroupSpec<O>[] = items.length > 0 && items.every((p) => !(p instanceof Tensor))
    ? items as ParamGroupSpec<O>[]
    : [{ params: items as Tensor[] } as unknown as ParamGroupSpec<O>];
  const seen = new Set<Tensor>();
  return specs.map((spec, g) => {
    const { params: groupParams, lrScale = 1, ...overrides } = spec;
    const list = [...groupParams];
    for (const p of list) {
      if (!p.requiresGrad) throw new ValueError(`${where}: parameter ${p} of group ${g} does not require grad`);
      if (seen.has(p)) throw new ValueError(`${where}: parameter ${p} appears in more than one group`);
      seen.add(p);
    }
    if (!(lrScale >= 0) || !Number.isFinite(lrScale)) throw new ValueError(`${where}: group ${g} lrScale must be a finite number ≥ 0, got ${lrScale}`);
    for (const key of Object.keys(overrides)) {
      if (!Object.hasOwn(defaults, key)) {
        throw new ValueError(`${where}: group ${g} has an unknown option "${key}"; options: ${["lrScale", ...Object.keys(defaults)].join(", ")}`);
      }
    }
    return { params: list, lrScale, options: { ...defaults, ...overrides as Partial<O> } };
  });
}
