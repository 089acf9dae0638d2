/**
 * retrograd's public API: everything a user imports comes from here.
 *
 *   import * as rg from "retrograd";               // Node, bundlers
 *   import * as rg from "./src/mod.ts";            // Deno
 *
 * Tensors and ops at the top level, `rg.nn` for modules, `rg.models` for the zoo,
 * `rg.optim` for optimisers and schedules, `rg.io` for safetensors, `rg.analysis` for
 * measures of models and logits, `rg.recompute` for memory planning (rg.checkpoint itself is
 * at the top level).
 */
export {
  Tensor, tensor, zeros, ones, full, randn, rand, bernoulli, empty, tidy, keep, type Shape, type GradHook,
} from "./tensor.ts";
export {
  noGrad, enableGrad, isGradEnabled, grad, withSavedTensorHooks, type GradOptions, type BackwardOptions, type SavedTensorHooks,
} from "./autograd.ts";
export { valueAndGrad, customGrad, type CustomGrad, type TensorTree } from "./functional.ts";
export { manualSeed, getRandomState, setRandomState, withRandomState, type RandomState } from "./random.ts";
export { getBackend, setBackend, registerBackend, registerBackendFactory } from "./backend/registry.ts";
export { setThreads, getThreads, registerThreadsHost, type ThreadsHost, type WorkerLike } from "./backend/cpu/threads.ts";
export {
  setCpuKernels, getCpuKernels, relaxedMaddRounding, CPU_KERNEL_CHOICES, type CpuKernels, type CpuKernelChoice, type MaddRounding,
  setDeterministic, isDeterministic, setConvAlgorithm, getConvAlgorithm, CONV_ALGORITHMS, type ConvAlgorithm,
} from "./backend/cpu/index.ts";
export type { Backend, MemoryInfo } from "./backend/backend.ts";
export { acquireWebGPU, createWebGPUBackend, WebGPUBackend } from "./backend/webgpu.ts";
export { useWebGPU, type UseWebGPUOptions } from "./backend/use_webgpu.ts";
export * from "./ops/index.ts";
export * from "./errors.ts";
export * as nn from "./nn/index.ts";
export * as models from "./nn/models/index.ts";
export * as optim from "./optim/index.ts";
export * as io from "./io/index.ts";
export * as data from "./data/index.ts";
export * as train from "./train/index.ts";
export * as analysis from "./analysis/index.ts";
export { checkpoint, checkpointMany, type CheckpointFn, type CheckpointManyFn, isRecomputing } from "./memory/checkpoint.ts";
export { checkpointSequential, type Block } from "./memory/sequential.ts";
export { RecomputationError, MemoryBudgetError } from "./memory/errors.ts";
export * as recompute from "./memory/index.ts";

import { getBackend, registerBackendFactory } from "./backend/registry.ts";
import { createCpuBackend } from "./backend/cpu/index.ts";
import type { MemoryInfo } from "./backend/backend.ts";

registerBackendFactory("cpu", createCpuBackend);

/** Bytes in use and peak on the current backend. */
export function memory(): MemoryInfo {
  return getBackend().memory();
}
