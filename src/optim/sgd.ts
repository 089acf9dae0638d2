/**
 * SGD with momentum, dampening, Nesterov and weight decay, with exactly torch.optim.SGD's
 * semantics (the momentum buffer starts as the first gradient, not zero), per parameter group.
 * The update is defined once in tensor ops (`sgdUpdate` below, which LARS and scale-amended
 * SGD reuse on their rescaled gradients); a backend with the fused `sgdStep` kernel runs the
 * same arithmetic in one pass instead (per parameter on the CPU, over all of them in one
 * dispatch on WebGPU, gpu/sgd.ts), and a test checks the two agree bitwise on the CPU.
 */
import { ValueError } from "../errors.ts";
import type { Backend, SgdOptions, SgdParam } from "../backend/backend.ts";
import { cloneData, empty, type Tensor, tidy } from "../tensor.ts";
import { OptimizerBase, type StateNames } from "./base.ts";
import type { ParamGroupSpec } from "./optimizer.ts";

export interface SGDConfig {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** A group's hyper-parameters (its rate is the optimiser's lr × lrScale). */
export type SGDGroupOptions = Omit<SgdOptions, "lr">;

/** SGD's defaults (torch.optim.SGD's) with the config's overrides. */
export function sgdDefaults(config: SGDConfig): SGDGroupOptions {
  return {
    momentum: config.momentum ?? 0,
    dampening: config.dampening ?? 0,
    weightDecay: config.weightDecay ?? 0,
    nesterov: config.nesterov ?? false,
  };
}

export function checkSgdOptions(o: SGDGroupOptions, where: string): void {
  for (const [name, v] of [["momentum", o.momentum], ["dampening", o.dampening], ["weightDecay", o.weightDecay]] as const) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new ValueError(`${where}: ${name} must be a finite number ≥ 0, got ${v}`);
  }
  if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
    throw new ValueError(`${where}: Nesterov momentum requires momentum > 0 and dampening = 0`);
  }
}

/** What the optimisers built on SGD's momentum step share: the momentum buffer as their one state. */
export abstract class MomentumOptimizer<O extends SGDGroupOptions> extends OptimizerBase<O> {
  protected stateNames(i: number): StateNames {
    return { required: this.groupOf[i].options.momentum !== 0 ? ["momentum_buffer"] : [] };
  }

  /**
   * Parameter i's momentum buffer (null without momentum), and whether this is its first
   * step, when torch.optim.SGD sets it to the update instead of accumulating.
   */
  protected momentumBuffer(i: number): { buffer: Tensor | null; firstStep: boolean } {
    if (this.groupOf[i].options.momentum === 0) return { buffer: null, firstStep: false };
    const firstStep = !this.hasState(i, "momentum_buffer");
    return { buffer: this.stateTensor(i, "momentum_buffer", (p) => empty(p.shape, p.backend)), firstStep };
  }
}

export class SGD extends MomentumOptimizer<SGDGroupOptions> {
  /** Run the tensor-op definition even where the backend has the fused kernel (tests). */
  useFusedKernel = true;

  constructor(params: Iterable<Tensor> | readonly ParamGroupSpec<SGDGroupOptions>[], config: SGDConfig) {
    super("SGD", params, config.lr, sgdDefaults(config), false, checkSgdOptions);
  }

  /** Apply one update to every parameter that has a gradient. */
  step(): void {
    let index = 0;
    for (const group of this.paramGroups) {
      const options: SgdOptions = { ...group.options, lr: this.lr * group.lrScale };
      // Grouped by backend: parameters may live on different ones, and each fuses its own.
      const fused = new Map<Backend, SgdParam[]>();
      for (const p of group.params) {
        const i = index++;
        if (!p.grad) continue;
        this.recordRate(i, null);
        const { buffer, firstStep } = this.momentumBuffer(i);
        const sgdStep = this.useFusedKernel ? p.backend.sgdStep : undefined;
        if (!sgdStep) {
          sgdUpdate(p, p.grad, buffer, firstStep, options);
          continue;
        }
        let list = fused.get(p.backend);
        if (!list) fused.set(p.backend, (list = []));
        list.push({ param: p.buffer, grad: p.grad.buffer, momentum: buffer?.buffer ?? null, firstStep });
      }
      for (const [backend, list] of fused) backend.sgdStep!(list, options);
    }
  }
}

/**
 * torch.optim.SGD's update of one parameter, in tensor ops: d = g + wd·p; with momentum,
 * buf = g's d on the first step, else momentum·buf + (1 − dampening)·d, and d = buf (or
 * d + momentum·buf with Nesterov); p −= lr·d. The fused kernels compute exactly this.
 */
export function sgdUpdate(p: Tensor, grad: Tensor, buf: Tensor | null, firstStep: boolean, o: SgdOptions): void {
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
