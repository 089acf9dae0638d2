/**
 * SGD with momentum, dampening, Nesterov and weight decay, with exactly torch.optim.SGD's
 * semantics (the momentum buffer starts as the first gradient, not zero), per parameter group.
 * The update is defined once in tensor ops (`update` below); a backend with the fused
 * `sgdStep` kernel runs the same arithmetic in one pass instead (per parameter on the CPU,
 * over all of them in one dispatch on WebGPU, gpu/sgd.ts), and a test checks the two agree
 * bitwise on the CPU.
 */
import { StateDictError, ValueError } from "../errors.ts";
import type { Backend, SgdOptions, SgdParam } from "../backend/backend.ts";
import { cloneData, empty, keep, type Tensor, tidy } from "../tensor.ts";
import { sameShape } from "../ops/util.ts";
import { makeParamGroups, type Optimizer, type ParamGroup, type ParamGroupSpec } from "./optimizer.ts";

export interface SGDConfig {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** A group's hyper-parameters (its rate is the optimiser's lr × lrScale). */
export type SGDGroupOptions = Omit<SgdOptions, "lr">;

function checkOptions(o: SGDGroupOptions, where: string): void {
  for (const [name, v] of [["momentum", o.momentum], ["dampening", o.dampening], ["weightDecay", o.weightDecay]] as const) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new ValueError(`${where}: ${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
    throw new ValueError(`${where}: Nesterov momentum requires momentum > 0 and dampening = 0`);
  }
}

export class SGD implements Optimizer {
  readonly paramGroups: ParamGroup<SGDGroupOptions>[];
  /** Every parameter in group order: the index of PyTorch's state names. */
  readonly params: readonly Tensor[];
  private baseLr = 0;
  private readonly momentumBuffers: (Tensor | null)[];
  /** Run the tensor-op definition even where the backend has the fused kernel (tests). */
  useFusedKernel = true;

  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<SGDGroupOptions>[], config: SGDConfig) {
    const defaults: SGDGroupOptions = {
      momentum: config.momentum ?? 0,
      dampening: config.dampening ?? 0,
      weightDecay: config.weightDecay ?? 0,
      nesterov: config.nesterov ?? false,
    };
    this.lr = config.lr;
    this.paramGroups = makeParamGroups("SGD", params, defaults);
    this.paramGroups.forEach((g, i) => checkOptions(g.options, this.paramGroups.length > 1 ? `SGD group ${i}` : "SGD"));
    this.params = this.paramGroups.flatMap((g) => g.params);
    this.momentumBuffers = this.params.map(() => null);
  }

  get lr(): number {
    return this.baseLr;
  }
  set lr(value: number) {
    if (!(value >= 0) || !Number.isFinite(value)) throw new ValueError(`SGD: lr must be a finite number ≥ 0, got ${value}`);
    this.baseLr = value;
  }

  /** Apply one update to every parameter that has a gradient. */
  step(): void {
    let index = 0;
    for (const group of this.paramGroups) {
      const options: SgdOptions = { ...group.options, lr: this.baseLr * group.lrScale };
      // Grouped by backend: parameters may live on different ones, and each fuses its own.
      const fused = new Map<Backend, SgdParam[]>();
      for (const p of group.params) {
        const i = index++;
        if (!p.grad) continue;
        const firstStep = this.momentumBuffers[i] === null;
        if (options.momentum !== 0 && firstStep) this.momentumBuffers[i] = keep(empty(p.shape, p.backend));
        const buf = this.momentumBuffers[i];
        const sgdStep = this.useFusedKernel ? p.backend.sgdStep : undefined;
        if (!sgdStep) {
          update(p, p.grad, buf, firstStep, options);
          continue;
        }
        let list = fused.get(p.backend);
        if (!list) fused.set(p.backend, (list = []));
        list.push({ param: p.buffer, grad: p.grad.buffer, momentum: buf?.buffer ?? null, firstStep });
      }
      for (const [backend, list] of fused) backend.sgdStep!(list, options);
    }
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Momentum buffers by parameter index (PyTorch's optimizer state layout), for checkpoints. */
  stateDict(): Map<string, Tensor> {
    const state = new Map<string, Tensor>();
    this.momentumBuffers.forEach((b, i) => b && state.set(`state.${i}.momentum_buffer`, b));
    return state;
  }

  /**
   * Restore momentum buffers saved by stateDict(). Strict by default, like
   * Module.loadStateDict: a key that names no parameter's buffer, or (once any buffer was
   * saved, and with momentum) a parameter without one, is a StateDictError listing them all,
   * as is a buffer of the wrong shape; nothing is loaded then. An empty state means "not
   * stepped yet": every buffer starts afresh, as torch.optim does. `strict: false` skips
   * missing and unexpected keys (those buffers start afresh).
   */
  loadStateDict(state: Map<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const strict = opts.strict ?? true;
    const keyOf = (i: number) => `state.${i}.momentum_buffer`;
    const withMomentum = this.paramGroups.flatMap((g) => g.params.map(() => g.options.momentum !== 0));
    const expected = this.params.flatMap((_, i) => withMomentum[i] ? [keyOf(i)] : []);
    const unexpected = [...state.keys()].filter((k) => !expected.includes(k));
    const missing = state.size === 0 ? [] : expected.filter((k) => !state.has(k));
    const mismatched = this.params.flatMap((p, i) => {
      const saved = state.get(keyOf(i));
      return saved && !sameShape(saved.shape, p.shape)
        ? [`${keyOf(i)}: expected [${p.shape.join(", ")}], got [${saved.shape.join(", ")}]`] : [];
    });
    const invalid = StateDictError.check("SGD.loadStateDict", strict, missing, unexpected, mismatched);
    if (invalid) throw invalid;
    this.momentumBuffers.forEach((b, i) => {
      const saved = withMomentum[i] ? state.get(keyOf(i)) : undefined;
      if (!saved) {
        // Not stepped yet when saved: start afresh, as torch.optim does.
        b?.dispose();
        this.momentumBuffers[i] = null;
        return;
      }
      const p = this.params[i];
      (b ?? (this.momentumBuffers[i] = keep(empty(p.shape, p.backend)))).copy_(saved);
    });
  }
}

/**
 * torch.optim.SGD's update of one parameter, in tensor ops: d = g + wd·p; with momentum,
 * buf = g's d on the first step, else momentum·buf + (1 − dampening)·d, and d = buf (or
 * d + momentum·buf with Nesterov); p −= lr·d. The fused kernels compute exactly this.
 */
function update(p: Tensor, grad: Tensor, buf: Tensor | null, firstStep: boolean, o: SgdOptions): void {
  tidy(() => {
    let d = cloneData(grad);
    if (o.weightDecay !== 0) d.add_(p, o.weightDecay);
    if (buf) {
      if (firstStep) buf.copy_(d);
      else buf.mul_(o.momentum).add_(d, Math.fround(1 - Math.fround(o.dampening))); // the kernels' f32 1 − dampening
      if (o.nesterov) d.add_(buf, o.momentum);
      else d = buf;
    }
    p.add_(d, -o.lr);
  });
}
