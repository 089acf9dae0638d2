/**
 * An optimiser from plain settings (what `retrograd train` stores in config.json and the
 * trainer builds by default): which optimiser, its hyper-parameters, parameter groups (no
 * weight decay on BatchNorm and biases), clipping (global norm, AGC with the classifier left
 * out) and a weight EMA, assembled as an OptimizerChain. The settings are checked here, so a
 * bad value from a flag or a config file is a ValueError naming the setting.
 */
import { ValueError } from "../errors.ts";
import type { Fields } from "../io/fields.ts";
import type { Tensor } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import { SGD } from "./sgd.ts";
import { Adam, AdamW } from "./adam.ts";
import { LARS } from "./lars.ts";
import { LAMB } from "./lamb.ts";
import { ScaleAmendedSGD } from "./scale_amended.ts";
import { clipGradNorm } from "./clip.ts";
import { adaptiveClipGrad, parametersExceptClassifier } from "./agc.ts";
import { ModelEMA } from "./ema.ts";
import { type GradientTransform, OptimizerChain } from "./chain.ts";
import { noDecayNormBias } from "./groups.ts";
import type { Optimizer, ParamGroupSpec } from "./optimizer.ts";

export const OPTIMIZER_NAMES = ["sgd", "adam", "adamw", "lars", "lamb", "scale-amended"] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** What the trainer's config says besides lr, momentum, Nesterov and weight decay. */
export interface OptimizerSettings {
  name: OptimizerName;
  /** Adam's, AdamW's and LAMB's (β₁, β₂); their defaults when absent. */
  betas?: [number, number];
  /** ε of Adam's family and LARS (each one's default when absent). */
  eps?: number;
  /** LARS's trust coefficient (default 1e-3). */
  trustCoef?: number;
  /** Weight decay only on conv and linear weights. */
  noDecayNormBias?: boolean;
  /** Clip gradients to this global 2-norm before each step (0 or absent: no clipping). */
  clipGrad?: number;
  /** AGC's λ (0 or absent: none); the classifier is left out. */
  agc?: number;
  /** Parameters AGC also leaves unclipped, by full name or last part (e.g. ["skip_gain"]). */
  agcExclude?: string[];
  /** Decay of an EMA of the weights (0 or absent: none). */
  ema?: number;
}

/** The common hyper-parameters (TrainConfig's) the settings go with. */
export interface BaseHyperParameters {
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

/** Throws a ValueError naming the first bad setting. */
export function checkOptimizerSettings(s: OptimizerSettings): void {
  const bad = (name: string, want: string, got: unknown) => new ValueError(`optimizer: ${name} must be ${want}, got ${JSON.stringify(got)}`);
  if (!OPTIMIZER_NAMES.includes(s.name)) throw bad("name", `one of ${OPTIMIZER_NAMES.join(", ")}`, s.name);
  if (s.betas !== undefined && !(Array.isArray(s.betas) && s.betas.length === 2 && s.betas.every((b) => typeof b === "number" && b >= 0 && b < 1))) {
    throw bad("betas", "two numbers in [0, 1)", s.betas);
  }
  const nonNegative = (name: keyof OptimizerSettings, upper = Infinity) => {
    const v = s[name];
    if (v !== undefined && !(typeof v === "number" && v >= 0 && v < upper)) throw bad(name, `a number in [0, ${upper})`, v);
  };
  nonNegative("eps");
  nonNegative("trustCoef");
  nonNegative("clipGrad");
  nonNegative("agc");
  nonNegative("ema", 1);
  if (s.noDecayNormBias !== undefined && typeof s.noDecayNormBias !== "boolean") throw bad("noDecayNormBias", "true or false", s.noDecayNormBias);
  if (s.agcExclude !== undefined && !(Array.isArray(s.agcExclude) && s.agcExclude.every((n) => typeof n === "string" && n !== ""))) {
    throw bad("agcExclude", "a list of parameter names", s.agcExclude);
  }
  if (s.agcExclude?.length && !s.agc) throw bad("agcExclude", "given only with agc > 0", s.agcExclude);
}

/** Settings read back from a checkpoint or config.json: a field out of range is a CheckpointError naming it. */
export function readOptimizerSettings(f: Fields): OptimizerSettings {
  const nonNegative = (name: keyof OptimizerSettings, max = Infinity) => (f.has(name) ? { [name]: f.number(name, { min: 0, max }) } : {});
  const settings: OptimizerSettings = {
    name: f.string("name", OPTIMIZER_NAMES),
    ...(f.has("betas") ? { betas: f.numbers("betas", 2) as [number, number] } : {}),
    ...nonNegative("eps"), ...nonNegative("trustCoef"), ...nonNegative("clipGrad"), ...nonNegative("agc"), ...nonNegative("ema", 1),
    ...(f.has("noDecayNormBias") ? { noDecayNormBias: f.boolean("noDecayNormBias") } : {}),
    ...(f.has("agcExclude") ? { agcExclude: f.strings("agcExclude") } : {}),
  };
  if (settings.betas && !settings.betas.every((b) => b >= 0 && b < 1)) f.fail("betas", "two numbers in [0, 1)");
  if (settings.ema === 1) f.fail("ema", "a number in [0, 1)");
  return settings;
}

function makeOptimizer(model: Module, s: OptimizerSettings, h: BaseHyperParameters): Optimizer {
  // The groups' options are the weight decay only, which every optimiser here has.
  const params: Tensor[] | ParamGroupSpec<{ weightDecay: number }>[] = s.noDecayNormBias ? noDecayNormBias(model) : model.parameters();
  const sgdLike = { lr: h.lr, momentum: h.momentum, nesterov: h.nesterov, weightDecay: h.weightDecay };
  const adamLike = { lr: h.lr, weightDecay: h.weightDecay, ...(s.betas ? { betas: s.betas } : {}), ...(s.eps !== undefined ? { eps: s.eps } : {}) };
  switch (s.name) {
    case "sgd":
      return new SGD(params, sgdLike);
    case "adam":
      return new Adam(params, adamLike);
    case "adamw":
      return new AdamW(params, adamLike);
    case "lamb":
      return new LAMB(params, adamLike);
    case "lars":
      return new LARS(params, { ...sgdLike, ...(s.trustCoef !== undefined ? { trustCoef: s.trustCoef } : {}), ...(s.eps !== undefined ? { eps: s.eps } : {}) });
    case "scale-amended":
      return new ScaleAmendedSGD(params, { ...sgdLike, model });
  }
}

/** The optimiser the settings describe, over `model`'s parameters, with its clipping and EMA. */
export function createOptimizer(model: Module, settings: OptimizerSettings, hyper: BaseHyperParameters): OptimizerChain {
  checkOptimizerSettings(settings);
  const optimizer = makeOptimizer(model, settings, hyper);
  const transforms: GradientTransform[] = [];
  if (settings.agc) {
    const clipped = parametersExceptClassifier(model, settings.agcExclude);
    transforms.push(() => adaptiveClipGrad(clipped, settings.agc!));
  }
  if (settings.clipGrad) {
    const params = model.parameters();
    transforms.push(() => clipGradNorm(params, settings.clipGrad!).dispose());
  }
  return new OptimizerChain(optimizer, transforms, settings.ema ? new ModelEMA(model, settings.ema) : null);
}
