/** `rg.train`: the training loop, evaluation and checkpoints. */
export { Trainer, evaluate, makeSchedule, type TrainConfig, type TrainCallbacks, type StepRecord, type EpochRecord, type LogitsObserver } from "./trainer.ts";
export { encodeCheckpoint, decodeCheckpoint, type TrainingPosition } from "./checkpoint.ts";
