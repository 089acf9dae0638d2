/**
 * `rg.analysis`: measures of a model and its outputs for experiments and diagnostics, kept
 * apart from training so they can be taken at any point without changing the run: the
 * PowerGrad paper's logit statistics and per-filter weight norms.
 */
export { LogitStatsSum, logitStats, type LogitStats } from "./logit_stats.ts";
export { countZeroed, filterNorms, median, modelFilterNorms, ZEROED_FRACTION, type LayerFilterNorms } from "./filter_norms.ts";
