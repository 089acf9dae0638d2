/** `rg.optim`: optimisers, gradient clipping, weight EMA, parameter groups and learning-rate schedules. */
export { SGD, type SGDConfig, type SGDGroupOptions } from "./sgd.ts";
export { Adam, AdamW, type AdamConfig, type AdamGroupOptions } from "./adam.ts";
export { LARS, type LARSConfig, type LARSGroupOptions } from "./lars.ts";
export { LAMB, type LAMBConfig, type LAMBGroupOptions } from "./lamb.ts";
export { ScaleAmendedSGD, type ScaleAmendedConfig } from "./scale_amended.ts";
export { clipGradNorm, clipGradValue, globalNorm } from "./clip.ts";
export { adaptiveClipGrad, parametersExceptClassifier } from "./agc.ts";
export { ModelEMA } from "./ema.ts";
export { OptimizerChain, type GradientTransform } from "./chain.ts";
export { groupParameters, noDecayNormBias, parameterKinds, type GroupRule, type ParamKind } from "./groups.ts";
export { readLayerRates, type LayerRateRecord } from "./rates.ts";
export {
  checkOptimizerSettings, createOptimizer, OPTIMIZER_NAMES, type OptimizerName, type OptimizerSettings,
} from "./build.ts";
export type { LayerRate, Optimizer, ParamGroup, ParamGroupSpec } from "./optimizer.ts";
export * as schedules from "./schedule.ts";
export type { Schedule } from "./schedule.ts";
