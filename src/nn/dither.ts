/**
 * Dithered backprop on a whole model (Wiedemann et al., arXiv 2004.04729): a forward hook on
 * every chosen layer (by default each Conv2d and Linear) puts `ditherGrad` on the layer's
 * output, so the gradient reaching the layer is quantised with non-subtractive dither before
 * the layer computes its input and weight gradients from it; the forward values are the
 * model's own. Each backward pass leaves, per layer, the fraction of the quantised gradient's
 * elements that are exactly 0 (the sparsity a sparse backward kernel could skip), read with
 * `readSparsity()` in one round of device reads.
 */
import { ditherGrad, checkDitherOptions, type DitherRule } from "../ops/dither.ts";
import type { Tensor } from "../tensor.ts";
import { Conv2d, Linear } from "./layers.ts";
import type { Module } from "./module.ts";

export interface DitherSettings {
  rule: DitherRule;
  factor: number;
}

export interface DitheredBackpropOptions extends DitherSettings {
  /** Which layers to dither (default: every Conv2d and Linear). */
  select?: (name: string, module: Module) => boolean;
}

const convOrLinear = (_name: string, m: Module) => m instanceof Conv2d || m instanceof Linear;

export class DitheredBackprop {
  /** The dithered layers' names, in the model's order. */
  readonly layers: readonly string[];
  private readonly pending = new Map<string, Tensor>();
  private readonly handles: { remove(): void }[] = [];

  constructor(model: Module, opts: DitheredBackpropOptions) {
    checkDitherOptions("DitheredBackprop", opts);
    const select = opts.select ?? convOrLinear;
    const chosen = [...model.namedModules()].filter(([name, m]) => select(name, m));
    this.layers = chosen.map(([name]) => name);
    for (const [name, module] of chosen) {
      const onSparsity = (zeroFraction: Tensor) => {
        this.pending.get(name)?.dispose(); // a second backward pass before a read: keep the latest
        this.pending.set(name, zeroFraction);
      };
      this.handles.push(module.registerForwardHook((_m, _input, output) =>
        ditherGrad(output, { rule: opts.rule, factor: opts.factor, onSparsity })
      ));
    }
  }

  /**
   * The zero fraction of each layer's quantised gradient in the last backward pass, in the
   * model's order (layers the pass did not reach are absent), and forget them.
   */
  async readSparsity(): Promise<Record<string, number>> {
    const entries = this.layers.flatMap((name) => {
      const t = this.pending.get(name);
      return t ? [[name, t] as const] : [];
    });
    this.pending.clear();
    const values = await Promise.all(entries.map(([, t]) => t.data()));
    for (const [, t] of entries) t.dispose();
    return Object.fromEntries(entries.map(([name], i) => [name, values[i][0]]));
  }

  /** Take the hooks off: the model backpropagates exactly again. */
  remove(): void {
    for (const h of this.handles) h.remove();
    for (const t of this.pending.values()) t.dispose();
    this.pending.clear();
  }
}
