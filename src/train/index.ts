/** `rg.train`: the training loop, evaluation and checkpoints. */
export { Trainer, evaluate, makeSchedule, type TrainCallbacks, type LogitsObserver } from "./trainer.ts";
export type { TrainConfig, StepRecord, EpochRecord, TrainingPosition, TrainingProgress } from "./records.ts";
export { encodeCheckpoint, decodeCheckpoint } from "./checkpoint.ts";
export { DivergenceGuard, gradNormSquared, type NonFinitePolicy } from "./divergence.ts";
