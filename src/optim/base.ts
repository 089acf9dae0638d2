/**
 * What every optimiser here shares, so each file holds only its update rule: parameter groups
 * (optimizer.ts), the base rate a schedule sets, zeroGrad, and per-parameter state kept as
 * named tensors plus a step count, exported under PyTorch's state-dict names
 * (`state.<i>.exp_avg`, `state.<i>.step` as a 0-d float32 tensor, as torch.optim 1.13 keeps
 * it), so a checkpoint's optimiser part loads into the torch.optim optimiser of the same
 * name. Loading is strict: a key this optimiser would never write, a state missing one of its
 * tensors or a tensor of the wrong size is a StateDictError naming the key, since a
 * checkpoint of another optimiser must not be half-loaded.
 */
import { StateDictError, ValueError } from "../errors.ts";
import { noGrad } from "../autograd.ts";
import { getBackend } from "../backend/registry.ts";
import { empty, full, keep, type Tensor, zeros } from "../tensor.ts";
import { sameShape } from "../ops/util.ts";
import { type LayerRate, makeParamGroups, type Optimizer, type ParamGroup, type ParamGroupSpec } from "./optimizer.ts";

/** The state names a parameter's state holds once it has stepped: all of `required`, any of `optional`. */
export interface StateNames {
  required: readonly string[];
  optional?: readonly string[];
}

export abstract class OptimizerBase<O extends object> implements Optimizer {
  readonly paramGroups: ParamGroup<O>[];
  readonly params: readonly Tensor[];
  /** Each parameter's group, by parameter index. */
  protected readonly groupOf: ParamGroup<O>[];
  /** Per parameter: its state tensors by PyTorch name (empty until its first step). */
  private readonly state: Map<string, Tensor>[];
  /** Per parameter: steps taken, saved as `step` by optimisers that count them. */
  protected readonly stepCounts: number[];
  /** 0-d CPU tensors mirroring stepCounts for stateDict(), made on first use. */
  private readonly stepTensors: (Tensor | null)[];
  /** What the last step applied to each parameter (LayerRate), by parameter index. */
  private readonly lastRates: (LayerRate | null)[];
  private baseLr = 0;

  /**
   * `name` prefixes every error; `countsSteps`: the state holds `step` (Adam's family);
   * `check` validates one group's options (`where` names the group).
   */
  constructor(
    readonly name: string, params: Iterable<Tensor> | readonly ParamGroupSpec<O>[], lr: number, defaults: O,
    private readonly countsSteps: boolean, check: (options: O, where: string) => void,
  ) {
    this.lr = lr;
    this.paramGroups = makeParamGroups(name, params, defaults);
    this.paramGroups.forEach((g, i) => check(g.options, this.paramGroups.length > 1 ? `${name} group ${i}` : name));
    this.params = this.paramGroups.flatMap((g) => g.params);
    this.groupOf = this.paramGroups.flatMap((g) => g.params.map(() => g));
    this.state = this.params.map(() => new Map());
    this.stepCounts = this.params.map(() => 0);
    this.stepTensors = this.params.map(() => null);
    this.lastRates = this.params.map(() => null);
  }

  get lr(): number {
    return this.baseLr;
  }
  set lr(value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new ValueError(`${this.name}: lr must be a finite number ≥ 0, got ${value}`);
    this.baseLr = value;
  }

  /** The rate of parameter i's group now. */
  protected groupLr(i: number): number {
    return this.baseLr * this.groupOf[i].lrScale;
  }

  abstract step(): void;

  /**
   * Run `update` for every parameter that has a gradient, in index order, without the tape:
   * the loop every step() here is made of, given the parameter, its gradient, index, group
   * options and the group's rate now.
   */
  protected forEachWithGrad(update: (p: Tensor, grad: Tensor, i: number, options: O, lr: number) => void): void {
    noGrad(() => {
      this.params.forEach((p, i) => {
        if (p.grad) update(p, p.grad, i, this.groupOf[i].options, this.groupLr(i));
      });
    });
  }

  /** The state names parameter i holds once it has stepped (besides `step`). */
  protected abstract stateNames(i: number): StateNames;

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Has parameter i any state yet (has it stepped)? */
  protected hasState(i: number, name: string): boolean {
    return this.state[i].has(name);
  }

  /** Parameter i's state tensor `name`, made by `init` (zeros by default) the first time. */
  protected stateTensor(i: number, name: string, init: (p: Tensor) => Tensor = (p) => zeros(p.shape, p.backend)): Tensor {
    let t = this.state[i].get(name);
    if (!t) this.state[i].set(name, (t = keep(init(this.params[i]))));
    return t;
  }

  /** Count a step of parameter i; returns its new step number (1 on the first). */
  protected countStep(i: number): number {
    return ++this.stepCounts[i];
  }

  /** Remember what the step just taken applied to parameter i (disposing the previous factor). */
  protected recordRate(i: number, factor: Tensor | null): void {
    this.lastRates[i]?.factor?.dispose();
    this.lastRates[i] = { param: this.params[i], lr: this.groupLr(i), factor: factor && keep(factor) };
  }

  layerRates(): LayerRate[] {
    return this.lastRates.filter((r): r is LayerRate => r !== null);
  }

  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    this.state.forEach((named, i) => {
      if (this.countsSteps && this.stepCounts[i] > 0) {
        const t = (this.stepTensors[i] ??= keep(full([], 0, getBackend("cpu"))));
        out.set(`state.${i}.step`, t.fill_(this.stepCounts[i]));
      }
      for (const [name, t] of named) out.set(`state.${i}.${name}`, t);
    });
    return out;
  }

  /**
   * Restore a state saved by stateDict(). Strict by default, like Module.loadStateDict: a key
   * this optimiser would never write, a parameter's state missing one of its tensors, and
   * (once any parameter has state) a parameter without any, are listed with every tensor of
   * the wrong shape in one StateDictError, and nothing is loaded. An empty state is a run
   * saved before its first step: every parameter starts afresh, as in torch.optim.
   * `strict: false` skips missing and unexpected keys (those parameters start afresh).
   */
  loadStateDict(saved: Map<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const strict = opts.strict ?? true;
    const stepName = this.countsSteps ? ["step"] : [];
    const expected = this.params.map((_, i) => {
      const { required, optional = [] } = this.stateNames(i);
      return { required: [...required, ...stepName], allowed: new Set([...required, ...optional, ...stepName]) };
    });
    const byParam = this.params.map(() => new Map<string, Tensor>());
    const unexpected: string[] = [];
    for (const [key, t] of saved) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(key);
      const i = m ? Number(m[1]) : -1;
      if (m && i < this.params.length && expected[i].allowed.has(m[2])) byParam[i].set(m[2], t);
      else unexpected.push(key);
    }
    const missing = saved.size === 0 ? [] : byParam.flatMap((named, i) => {
      // A parameter with no state at all had no gradient yet; with part of one, the rest is missing.
      const absent = expected[i].required.filter((n) => !named.has(n));
      return named.size === 0 && !strict ? [] : absent.map((n) => `state.${i}.${n}`);
    });
    const mismatched = byParam.flatMap((named, i) => [...named].flatMap(([n, t]) => {
      const shape = n === "step" ? [] : this.stateShape(i, n);
      return sameShape(t.shape, shape) || (n === "step" && t.size === 1)
        ? [] : [`state.${i}.${n}: expected [${shape.join(", ")}], got [${t.shape.join(", ")}]`];
    }));
    const invalid = StateDictError.check(`${this.name}.loadStateDict`, strict, missing, unexpected, mismatched);
    if (invalid) throw invalid;
    const steps = byParam.map((named, i) => {
      const step = named.get("step")?.dataSync()[0] ?? 0;
      if (named.has("step") && !(Number.isInteger(step) && step >= 1)) {
        throw new StateDictError(`${this.name}.loadStateDict: state.${i}.step must be an integer ≥ 1, got ${step}`, [], [], [`state.${i}.step`]);
      }
      return step;
    });
    // Copies first, then the swap: `saved` may hold this optimiser's own live tensors.
    const complete = byParam.map((named, i) => expected[i].required.every((n) => named.has(n)));
    const loaded = byParam.map((named, i) => new Map(complete[i] ? [...named].filter(([n]) => n !== "step")
      .map(([n, t]) => [n, keep(empty(this.stateShape(i, n), this.params[i].backend)).copy_(t)]) : []));
    loaded.forEach((named, i) => {
      for (const t of this.state[i].values()) t.dispose();
      this.state[i] = named;
      this.stepCounts[i] = complete[i] ? steps[i] : 0;
    });
  }

  /** The shape of parameter i's state tensor `name` (the parameter's own unless overridden). */
  protected stateShape(i: number, _name: string): readonly number[] {
    return this.params[i].shape;
  }

}
