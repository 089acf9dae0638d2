/**
 * `retrograd train`'s optimiser flags (which optimiser, its hyper-parameters, clipping, EMA,
 * the per-layer rate log) and the run outputs they add: a `rates` record beside each step
 * record in metrics.jsonl (--log-rates), an `ema` record after each epoch's evaluation and
 * model_ema.safetensors at the end (--ema). The settings themselves live in the trainer's
 * config (TrainConfig.optimizer), so checkpoints and --resume carry them.
 */
import * as rg from "../src/mod.ts";
import { OPTIMIZER_NAMES, type OptimizerSettings } from "../src/optim/build.ts";
import type { EpochRecord, StepRecord, TrainConfig } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";

export const OPTIMIZER_FLAGS: Flag[] = [
  { name: "optimizer", type: "string", default: "sgd", choices: OPTIMIZER_NAMES, help: "sgd (torch.optim.SGD), adam, adamw (torch.optim's), lars, lamb (timm's), scale-amended (SGD with per-layer rates from back-matching propagation, as derived in src/optim/scale_amended.ts)" },
  { name: "betas", type: "list", default: undefined, help: "β₁,β₂ of adam, adamw and lamb (default 0.9,0.999)" },
  { name: "eps", type: "number", default: undefined, min: 0, help: "ε of adam, adamw, lamb and lars (default: each one's own, 1e-8; lamb 1e-6)" },
  { name: "trust-coef", type: "number", default: undefined, min: 0, exclusiveMin: true, help: "LARS trust coefficient (default 0.001)" },
  { name: "no-decay-norm-bias", type: "boolean", default: false, help: "no weight decay on BatchNorm parameters and biases (their own parameter group; LARS then leaves them unadapted, as timm)" },
  { name: "clip-grad", type: "number", default: 0, min: 0, help: "clip the gradients to this global 2-norm before each step, as clip_grad_norm_ (0: off)" },
  { name: "agc", type: "number", default: 0, min: 0, help: "adaptive gradient clipping at λ, unit-wise ‖G‖/max(‖W‖, 1e-3) (Brock et al. 2021), the classifier left out (0: off)" },
  { name: "agc-exclude", type: "list", default: undefined, help: "parameters AGC also leaves unclipped, by name or last part of it, comma-separated (e.g. skip_gain: the zero-initialised gains of the ResNets without BatchNorm)" },
  { name: "ema", type: "number", default: 0, min: 0, help: "keep an EMA of the weights with this decay (< 1), evaluate it after each epoch and save model_ema.safetensors (0: off)" },
  { name: "log-rates", type: "boolean", default: false, help: "with each step record, a record of every layer's effective learning rate and its trust ratio / multiplier in metrics.jsonl" },
];

/** The optimiser settings the flags give (checked; a bad value is a UsageError naming the flag). */
export function optimizerSettingsFrom(flags: FlagValues): OptimizerSettings {
  const betas = flags.betas as string[] | undefined;
  const parsedBetas = betas?.map(Number);
  if (parsedBetas && !(parsedBetas.length === 2 && parsedBetas.every((b) => b >= 0 && b < 1))) {
    throw new UsageError(`--betas: must be two numbers in [0, 1) separated by a comma, got ${JSON.stringify(betas!.join(","))}`);
  }
  const ema = flags.ema as number;
  const agcExclude = flags["agc-exclude"] as string[] | undefined;
  if (agcExclude && !((flags.agc as number) > 0)) throw new UsageError(`--agc-exclude: only with --agc λ > 0`);
  if (agcExclude?.some((name) => name.trim() === "")) throw new UsageError(`--agc-exclude: an empty name in ${JSON.stringify(agcExclude.join(","))}`);
  if (ema >= 1) throw new UsageError(`--ema: must be < 1, got ${ema}`);
  const optional = <T>(key: string, value: T | undefined) => (value === undefined ? {} : { [key]: value });
  return {
    name: flags.optimizer as OptimizerSettings["name"],
    ...optional("betas", parsedBetas as [number, number] | undefined),
    ...optional("eps", flags.eps as number | undefined),
    ...optional("trustCoef", flags["trust-coef"] as number | undefined),
    noDecayNormBias: flags["no-decay-norm-bias"] as boolean,
    clipGrad: flags["clip-grad"] as number,
    agc: flags.agc as number,
    ...optional("agcExclude", agcExclude),
    ema,
  };
}

/** What a run with this optimiser writes besides the trainer's records. */
export class OptimizerOutputs {
  private readonly names: Map<rg.Tensor, string>;
  private readonly ema: rg.optim.ModelEMA | null;

  constructor(model: rg.nn.Module, private readonly optimizer: rg.optim.Optimizer, private readonly logRates: boolean) {
    this.names = new Map([...model.namedParameters()].map(([name, p]) => [p, name]));
    this.ema = optimizer instanceof rg.optim.OptimizerChain ? optimizer.ema : null;
  }

  /** The rates record to write beside a step record (null without --log-rates). */
  async ratesRecord(step: StepRecord): Promise<string | null> {
    if (!this.logRates) return null;
    const layers = await rg.optim.readLayerRates(this.optimizer, this.names);
    return rg.io.stringifyRecord({ type: "rates", epoch: step.epoch, step: step.step, lr: step.lr, layers });
  }

  /** The EMA weights' test loss and accuracy after an epoch (null without --ema). */
  async emaRecord(epoch: EpochRecord, testData: rg.data.Dataset, config: TrainConfig): Promise<string | null> {
    const ema = this.ema;
    if (!ema) return null;
    const test = await ema.applied(() => rg.train.evaluate(ema.model, testData, config));
    return rg.io.stringifyRecord({ type: "ema", epoch: epoch.epoch, step: epoch.step, decay: ema.decay, testLoss: test.loss, testAccuracy: test.accuracy });
  }

  /** The averaged weights as a plain state dict (null without --ema). */
  async emaWeights(): Promise<Uint8Array | null> {
    return this.ema ? rg.io.writeSafetensorsAsync(this.ema.stateDict()) : null;
  }
}
