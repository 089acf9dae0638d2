/**
 * Extra forward passes that leave a run as it was: inside `frozenStats(model, fn)` every
 * BatchNorm (and ZCA whitening layer, zca.ts) of the model normalises by its batch statistics in training mode (so the pass is
 * the one training sees) but moves neither running_mean, running_var nor num_batches_tracked.
 * What a probe of the loss landscape or a recomputed forward needs. `frozenStatsEverywhere(fn)`
 * does the same for every BatchNorm in existence, for code that runs a function without knowing
 * its modules (a recomputation replays whatever the checkpointed function touched). Scopes
 * nest; `fn` may be async, and the statistics stay frozen until its promise settles.
 */
import type { Module } from "./module.ts";
import { BatchNorm2d } from "./layers.ts";
import { ZCAWhitening2d } from "./zca.ts";

/** Run `fn` between `freeze()` and `thaw()`, thawing when it throws or, if async, when it settles. */
function scoped<T>(freeze: () => void, thaw: () => void, fn: () => T): T {
  freeze();
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

export function frozenStats<T>(model: Module, fn: () => T): T {
  const norms = [...model.namedModules()].map(([, m]) => m)
    .filter((m): m is BatchNorm2d | ZCAWhitening2d => m instanceof BatchNorm2d || m instanceof ZCAWhitening2d);
  return scoped(() => norms.forEach((bn) => bn.statsFrozen++), () => norms.forEach((bn) => bn.statsFrozen--), fn);
}

export function frozenStatsEverywhere<T>(fn: () => T): T {
  return scoped(() => BatchNorm2d.statsFrozenEverywhere++, () => BatchNorm2d.statsFrozenEverywhere--, fn);
}
