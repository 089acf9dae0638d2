/**
 * SGD with momentum, dampening, Nesterov and weight decay, with exactly torch.optim.SGD's
 * semantics (the momentum buffer starts as the first gradient, not zero). A step hands every
 * parameter that has a gradient to its backend in one `sgdStep` call, where one fused kernel
 * does decay, momentum and update in a single pass: per parameter on the CPU, over all of
 * them in one dispatch on WebGPU (gpu/sgd.ts).
 */
import { ValueError } from "../errors.ts";
import type { Backend, SgdOptions, SgdParam } from "../backend/backend.ts";
import { empty, keep, Tensor } from "../tensor.ts";

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

  loadStateDict(state: Map<string, Tensor>): void {
    this.momentumBuffers.forEach((b, i) => {
      const saved = state.get(`state.${i}.momentum_buffer`);
      if (!saved) {
        // Not stepped yet when saved: start afresh, as torch.optim does.
        b?.dispose();
        this.momentumBuffers[i] = null;
        return;
      }
      const p = this.params[i];
      if (saved.size !== p.size) {
        throw new ValueError(`SGD.loadStateDict: state.${i}.momentum_buffer has ${saved.size} values, parameter ${i} has ${p.size}`);
      }
      const target = b ?? (this.momentumBuffers[i] = keep(empty(p.shape, p.backend)));
      target.backend.write(target.buffer, saved.dataSync());
    });
  }
}
