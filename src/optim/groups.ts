/**
 * Parameter groups from a model by name or by kind, for any optimiser's constructor:
 *   new rg.optim.AdamW(rg.optim.groupParameters(model, [{ kinds: ["norm", "bias"], weightDecay: 0 }]), { lr: 1e-3 })
 * is the usual "no weight decay on BatchNorm and biases" in one line. A parameter's kind is
 * "norm" (a BatchNorm's γ and β), "bias" (any other parameter named bias) or "weight". Each
 * rule selects by `names` (a RegExp, or a string where `*` matches anything, tested against
 * the full state-dict name), by `kinds`, or both (a parameter must then match both); the
 * first rule a parameter matches takes it. The groups come out as: every parameter no rule
 * takes (the optimiser's defaults) first, then one group per rule, in model order within
 * each; empty groups are left out.
 */
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import { BatchNorm2d } from "../nn/layers.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export type ParamKind = "norm" | "bias" | "weight";

export type GroupRule<O> = { names?: RegExp | string; kinds?: readonly ParamKind[]; lrScale?: number } & Partial<O>;

const KINDS: readonly ParamKind[] = ["norm", "bias", "weight"];

/** Each parameter of `model` by name with its kind. */
export function parameterKinds(model: Module): { name: string; param: Tensor; kind: ParamKind }[] {
  const out: { name: string; param: Tensor; kind: ParamKind }[] = [];
  for (const [prefix, m] of model.namedModules()) {
    const own = [...m.namedParameters()].filter(([name]) => !name.includes("."));
    for (const [local, param] of own) {
      const kind: ParamKind = m instanceof BatchNorm2d ? "norm" : local === "bias" ? "bias" : "weight";
      out.push({ name: prefix ? `${prefix}.${local}` : local, param, kind });
    }
  }
  return out;
}

function namePattern(names: RegExp | string): RegExp {
  if (names instanceof RegExp) return names;
  const escaped = names.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${escaped}$`);
}

export function groupParameters<O>(model: Module, rules: readonly GroupRule<O>[]): ParamGroupSpec<O>[] {
  const matchers = rules.map((rule, r) => {
    const { names, kinds, ...options } = rule;
    if (names === undefined && kinds === undefined) throw new ValueError(`groupParameters: rule ${r} selects by neither names nor kinds`);
    for (const k of kinds ?? []) {
      if (!KINDS.includes(k)) throw new ValueError(`groupParameters: rule ${r} has unknown kind "${k}"; kinds: ${KINDS.join(", ")}`);
    }
    const pattern = names === undefined ? null : namePattern(names);
    return { options, accepts: (name: string, kind: ParamKind) => (!pattern || pattern.test(name)) && (!kinds || kinds.includes(kind)) };
  });
  const rest: Tensor[] = [];
  const taken = rules.map(() => [] as Tensor[]);
  for (const { name, param, kind } of parameterKinds(model)) {
    const r = matchers.findIndex((m) => m.accepts(name, kind));
    (r < 0 ? rest : taken[r]).push(param);
  }
  const groups = [{ params: rest }, ...matchers.map((m, r) => ({ ...m.options, params: taken[r] }))] as unknown as ParamGroupSpec<O>[];
  return groups.filter((g) => [...g.params].length > 0);
}

/** Every parameter in one group, but BatchNorm's and every bias in a second with no weight decay. */
export function noDecayNormBias(model: Module): ParamGroupSpec<{ weightDecay: number }>[] {
  return groupParameters<{ weightDecay: number }>(model, [{ kinds: ["norm", "bias"], weightDecay: 0 }]);
}
