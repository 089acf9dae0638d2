/**
 * `rg.analysis`: measures of a model and its training, kept apart from training so they can be
 * taken at any point without changing the run: the PowerGrad paper's logit statistics and
 * per-filter weight norms, and the probes of the backward pass (probes.ts): per-layer
 * statistics, activation distributions, Santurkar et al.'s internal covariate shift and loss
 * landscape, and curvature.
 */
export { LogitStatsSum, logitStats, type LogitStats } from "./logit_stats.ts";
export {
  countZeroed, filterLayers, filterNorms, weightLayers, median, modelFilterNorms, ZEROED_FRACTION, type LayerFilterNorms,
} from "./filter_norms.ts";
export { PROBE_NAMES, parseProbeSpec, Prober, type ProbeName, type ProbeOptions, type ProbeRecord } from "./probes.ts";
export { type ProbedStep, StepContext } from "./probed_step.ts";
export { BatchObjective, type LossFn, type ProbeBatch } from "./objective.ts";
export { axpy, difference, disposeParams, dot, dotsPerTensor, norm, type ParamMap, scaled, snapshotParameters } from "./param_maps.ts";
export { layerStatistics, type ParameterStats } from "./layer_stats.ts";
export { activationStatistics, defaultActivationLayers, QUANTILE_LEVELS, quantileOfSorted, summarise, type ActivationStats } from "./activations.ts";
export { internalCovariateShift, type LayerShift } from "./ics.ts";
export { DEFAULT_STEP_MULTIPLIERS, type LandscapeMeasures, lossLandscape } from "./landscape.ts";
export { curvature, type CurvatureOptions, hessianVectorProduct, hutchinsonTrace, topEigenvalue } from "./curvature.ts";
