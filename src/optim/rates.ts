/**
 * Per-layer learning rates of the last step as plain numbers, for metrics.jsonl and plots:
 * for each parameter by name, the effective rate (the group's rate times the optimiser's
 * per-layer factor: LARS's and LAMB's trust ratio, scale-amended SGD's multiplier) and the
 * factor itself; where the factor has one value per output channel, their mean, min and max.
 * Reading them is a device read, so the trainer's caller decides how often (the CLI: with
 * each step record under --log-rates).
 */
import type { Tensor } from "../tensor.ts";
import type { Optimizer } from "./optimizer.ts";

export interface LayerRateRecord {
  /** Group rate × factor (× mean factor where per channel). */
  rate: number;
  /** The per-layer factor (1 where the optimiser has none). */
  factor: number;
  /** Smallest and largest factor over output channels, where there is one per channel. */
  min?: number;
  max?: number;
}

/** The last step's rates by parameter name (`names` maps each parameter to its name). */
export async function readLayerRates(optimizer: Optimizer, names: ReadonlyMap<Tensor, string>): Promise<Record<string, LayerRateRecord>> {
  const rates = optimizer.layerRates?.() ?? [];
  const values = await Promise.all(rates.map((r) => r.factor?.data() ?? null));
  const out: Record<string, LayerRateRecord> = {};
  rates.forEach((r, k) => {
    const factors = values[k] ?? [1];
    let sum = 0, min = Infinity, max = -Infinity;
    for (const f of factors) {
      sum += f;
      min = Math.min(min, f);
      max = Math.max(max, f);
    }
    const factor = sum / factors.length;
    const name = names.get(r.param) ?? `param${optimizer.params.indexOf(r.param)}`;
    out[name] = factors.length > 1 ? { rate: r.lr * factor, factor, min, max } : { rate: r.lr * factor, factor };
  });
  return out;
}
