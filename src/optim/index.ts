/** `rg.optim`: optimisers and learning-rate schedules. */
export { SGD, type SGDConfig, type SGDGroupOptions } from "./sgd.ts";
export type { Optimizer, ParamGroup, ParamGroupSpec } from "./optimizer.ts";
export * as schedules from "./schedule.ts";
export type { Schedule } from "./schedule.ts";
export { PipelinedSGD, layerStages, type PipelinedSGDConfig, type PipelineStageOptions } from "./pipelined.ts";
