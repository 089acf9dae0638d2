/**
 * SGD with momentum, dampening, Nesterov and weight decay, with exactly torch.optim.SGD's
 * semantics (the momentum buffer starts as the first gradient, not zero). A step hands every
 * parameter that has a gradient to its backend in one `sgdStep` call, where one fused kernel
 * does decay, momentum and update in a single pass: per parameter on the CPU, over all of
 * them in one dispatch on WebGPU (gpu/sgd.ts).
 */
import { StateDictError, ValueError } from "../errors.ts";
import type { Backend, SgdOptions, SgdParam } from "../backend/backend.ts";
import { empty, keep, Tensor } from "../tensor.ts";
import { sameShape } from "../ops/util.ts";

export interface SGDConfig {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD {
  readonly params: Tensor[];
  readonly options: SgdOptions;
  private readonly momentumBuffers: (Tensor | null)[];

  constructor(params: Iterable<Tensor>, config: SGDConfig) {
    this.params = [...params];
    this.options = {
      lr: config.lr,
      momentum: config.momentum ?? 0,
      dampening: config.dampening ?? 0,
      weightDecay: config.weightDecay ?? 0,
      nesterov: config.nesterov ?? false,
    };
    const o = this.options;
    for (const [name, v] of [["lr", o.lr], ["momentum", o.momentum], ["weightDecay", o.weightDecay]] as const) {
      if (!(v >= 0) || !Number.isFinite(v)) throw new ValueError(`SGD: ${name} must be a finite number ≥ 0, got ${v}`);
    }
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0");
    }
    for (const p of this.params) {
      if (!p.requiresGrad) throw new ValueError(`SGD: parameter ${p} does not require grad`);
    }
    this.momentumBuffers = this.params.map(() => null);
  }

  get lr(): number {
    return this.options.lr;
  }
  set lr(value: number) {
    if (!(value >= 0)) throw new ValueError(`SGD: lr must be ≥ 0, got ${value}`);
    this.options.lr = value;
  }

  /** Apply one update to every parameter that has a gradient. */
  step(): void {
    // Grouped by backend: parameters may live on different ones, and each fuses its own.
    const byBackend = new Map<Backend, SgdParam[]>();
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      let buf = this.momentumBuffers[i];
      const firstStep = buf === null;
      if (this.options.momentum !== 0 && buf === null) {
        buf = this.momentumBuffers[i] = keep(empty(p.shape, p.backend));
      }
      let group = byBackend.get(p.backend);
      if (!group) byBackend.set(p.backend, (group = []));
      group.push({ param: p.buffer, grad: p.grad.buffer, momentum: buf?.buffer ?? null, firstStep });
    });
    for (const [backend, group] of byBackend) backend.sgdStep(group, this.options);
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
    const expected = this.options.momentum !== 0 ? this.params.map((_, i) => keyOf(i)) : [];
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
      const saved = expected.length ? state.get(keyOf(i)) : undefined;
      if (!saved) {
        // Not stepped yet when saved: start afresh, as torch.optim does.
        b?.dispose();
        this.momentumBuffers[i] = null;
        return;
      }
      const p = this.params[i];
      const target = b ?? (this.momentumBuffers[i] = keep(empty(p.shape, p.backend)));
      target.backend.write(target.buffer, saved.dataSync());
    });
  }
}
