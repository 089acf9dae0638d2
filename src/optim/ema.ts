/**
 * An exponential moving average of a model's weights, kept beside the model for evaluation
 * (as timm's ModelEmaV3 and torch.optim.swa_utils' EMA): after each step every float tensor
 * of the state dict, running statistics included, moves as
 *   ema ← decay·ema + (1 − decay)·value,
 * and integer counters (num_batches_tracked) are copied. `applied(fn)` runs `fn` with the
 * averaged weights in the model and puts the trained ones back afterwards, so evaluation
 * code needs no second model. Its state (the averages, by the model's state-dict names) goes
 * into checkpoints, so a resumed run averages on exactly as before.
 */
import { StateDictError, ValueError } from "../errors.ts";
import { cloneData, keep, type Tensor } from "../tensor.ts";
import type { Module } from "../nn/module.ts";

export class ModelEMA {
  private readonly averaged = new Map<string, Tensor>();

  constructor(readonly model: Module, readonly decay: number) {
    if (!(decay >= 0 && decay < 1)) throw new ValueError(`ModelEMA: decay must be in [0, 1), got ${decay}`);
    for (const [name, t] of model.stateDict()) this.averaged.set(name, keep(cloneData(t)));
  }

  /** Move the averages towards the model's current weights (after an optimiser step). */
  update(): void {
    for (const [name, t] of this.model.stateDict()) {
      const average = this.averaged.get(name)!;
      if (t.dtype === "int64") average.copy_(t);
      else average.mul_(this.decay).add_(t, 1 - this.decay);
    }
  }

  /** The averages by the model's state-dict names (live tensors). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.averaged);
  }

  loadStateDict(state: Map<string, Tensor>): void {
    const missing = [...this.averaged.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !this.averaged.has(k));
    const mismatched = [...state].filter(([k, t]) => this.averaged.has(k) && this.averaged.get(k)!.size !== t.size).map(([k]) => k);
    if (missing.length + unexpected.length + mismatched.length > 0) {
      const parts = [
        missing.length ? `missing ${missing.join(", ")}` : "",
        unexpected.length ? `unexpected ${unexpected.join(", ")}` : "",
        mismatched.length ? `wrong size ${mismatched.join(", ")}` : "",
      ];
      throw new StateDictError(`ModelEMA.loadStateDict: ${parts.filter(Boolean).join("; ")}`, missing, unexpected, mismatched);
    }
    for (const [name, t] of state) this.averaged.get(name)!.copy_(t);
  }

  /** Run `fn` (sync or async) with the averaged weights in the model, the trained ones restored after. */
  async applied<T>(fn: () => T | Promise<T>): Promise<T> {
    const own = this.model.stateDict();
    const trained = new Map([...own].map(([name, t]) => [name, keep(cloneData(t))]));
    for (const [name, t] of own) t.copy_(this.averaged.get(name)!);
    try {
      return await fn();
    } finally {
      for (const [name, t] of own) t.copy_(trained.get(name)!);
      for (const t of trained.values()) t.dispose();
    }
  }
}
