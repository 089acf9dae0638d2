/**
 * An optimiser with the steps that go around it in training, as one Optimizer the trainer and
 * checkpoints take: gradient transforms before the update (clipping by norm or value, AGC;
 * each a function run in order), the optimiser's step, then the weight EMA's update. Its state
 * is the optimiser's (PyTorch's names, unchanged) plus the EMA's averages under `ema.`, so a
 * checkpoint resumes all of it. Library users may as well call the steps themselves:
 *   loss.backward(); rg.optim.clipGradNorm(params, 1); opt.step(); ema.update();
 */
import type { Tensor } from "../tensor.ts";
import type { ModelEMA } from "./ema.ts";
import type { LayerRate, Optimizer, ParamGroup } from "./optimizer.ts";

/** A step run on the gradients before the update (they are changed in place). */
export type GradientTransform = () => void;

const EMA_PREFIX = "ema.";

export class OptimizerChain implements Optimizer {
  constructor(
    readonly optimizer: Optimizer,
    readonly transforms: readonly GradientTransform[] = [],
    readonly ema: ModelEMA | null = null,
  ) {}

  get lr(): number {
    return this.optimizer.lr;
  }
  set lr(value: number) {
    this.optimizer.lr = value;
  }
  get paramGroups(): readonly ParamGroup<unknown>[] {
    return this.optimizer.paramGroups;
  }
  get params(): readonly Tensor[] {
    return this.optimizer.params;
  }

  step(): void {
    for (const transform of this.transforms) transform();
    this.optimizer.step();
    this.ema?.update();
  }

  zeroGrad(): void {
    this.optimizer.zeroGrad();
  }

  layerRates(): LayerRate[] {
    return this.optimizer.layerRates?.() ?? [];
  }

  stateDict(): Map<string, Tensor> {
    const state = this.optimizer.stateDict();
    for (const [name, t] of this.ema?.stateDict() ?? []) state.set(EMA_PREFIX + name, t);
    return state;
  }

  loadStateDict(state: Map<string, Tensor>): void {
    const own = new Map([...state].filter(([k]) => !k.startsWith(EMA_PREFIX)));
    // Without an EMA the `ema.` keys stay in, and the optimiser rejects them by name.
    if (this.ema) {
      this.ema.loadStateDict(new Map([...state].filter(([k]) => k.startsWith(EMA_PREFIX)).map(([k, t]) => [k.slice(EMA_PREFIX.length), t])));
    } else {
      for (const [k, t] of state) if (k.startsWith(EMA_PREFIX)) own.set(k, t);
    }
    this.optimizer.loadStateDict(own);
  }
}
