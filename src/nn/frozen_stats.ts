/**
 * Extra forward passes that leave a run as it was: inside `frozenStats(model, fn)` every
 * BatchNorm of the model normalises by its batch statistics in training mode (so the pass is
 * the one training sees) but moves neither running_mean, running_var nor num_batches_tracked.
 * What a probe of the loss landscape or a recomputed forward needs. Scopes nest; `fn` may be
 * async, and the statistics stay frozen until its promise settles.
 */
import type { Module } from "./module.ts";
import { BatchNorm2d } from "./layers.ts";

export function frozenStats<T>(model: Module, fn: () => T): T {
  const norms = [...model.namedModules()].map(([, m]) => m).filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
  for (const bn of norms) bn.statsFrozen++;
  const thaw = () => {
    for (const bn of norms) bn.statsFrozen--;
  };
  let result: T;
  try {
    result = fn();
  } catch (error) {
    thaw();
    throw error;
  }
  if (result instanceof Promise) return result.finally(thaw) as T;
  thaw();
  return result;
}
