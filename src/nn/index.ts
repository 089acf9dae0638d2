/** `rg.nn`: modules, layers, initialisers, the loss, and the model zoo. */
export { Module, type StateDict, type ForwardHook, type BackwardHook } from "./module.ts";
export * from "./layers.ts";
export { functionalCall } from "./functional_call.ts";
export { frozenStats, frozenStatsEverywhere } from "./frozen_stats.ts";
export { DitheredBackprop, type DitheredBackpropOptions, type DitherSettings } from "./dither.ts";
export * as init from "./init.ts";
export { crossEntropy } from "../ops/loss.ts";
export { LpNorm2d, type LpOrder } from "./lp_norm.ts";
export { addBatchNormNoise, type BatchNormNoiseOptions } from "./batch_norm_noise.ts";
export { bayesian_, bayesianInit, type BayesianInitOptions } from "./bayes_init.ts";
export { ZCAWhitening2d, type ZCAWhitening2dOptions } from "./zca.ts";
