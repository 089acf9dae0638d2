/**
 * Run a module at other parameters (PyTorch's torch.func.functional_call): the given tensors,
 * by their state-dict names, stand in for the module's own for one forward call, and the
 * module is exactly as before afterwards. Nothing is copied, so gradients flow to the given
 * tensors (with `valueAndGrad`, a loss becomes a function of the parameters); keys left out
 * keep the module's own tensors. Buffers may be given too (a BatchNorm in training mode then
 * moves the given running statistics, as in PyTorch).
 */
import type { Tensor } from "../tensor.ts";
import type { Module } from "./module.ts";

export function functionalCall(
  module: Module, tensors: ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>, x: Tensor,
): Tensor {
  const replacements = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  return module.withTensors(replacements, () => module.forward(x));
}
