/** `rg.train`: the training loop, evaluation and checkpoints. */
export { Trainer, evaluate, makeSchedule, type TrainConfig, type TrainCallbacks, type StepRecord, type EpochRecord } from "./trainer.ts";
export { encodeCheckpoint, decodeCheckpoint, type TrainingPosition } from "./checkpoint.ts";
export { DivergenceGuard, gradNormSquared, type NonFinitePolicy } from "./divergence.ts";
