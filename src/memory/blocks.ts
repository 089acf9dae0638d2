/**
 * A model as the chain of blocks a memory plan works on: a model that lists the parts its
 * forward pass runs in order (`sequence()`, as the ResNets do: stem, stages, head) or a
 * Sequential, with every Sequential inside opened up one level, so a ResNet's chain is its
 * stem, each residual block, and its head. The forward pass must be exactly these blocks
 * composed, which is what `sequence()` promises.
 */
import { ValueError } from "../errors.ts";
import type { Module } from "../nn/module.ts";
import { Sequential } from "../nn/layers.ts";

interface HasSequence {
  sequence(): Module[];
}

function hasSequence(model: Module): model is Module & HasSequence {
  return typeof (model as Partial<HasSequence>).sequence === "function";
}

/** A block of the chain and its path in the model ("layer2.0"; "stem" and "head" for the ResNets' inline parts). */
export interface NamedBlock {
  name: string;
  module: Module;
}

/** The blocks `model.forward` composes, in order (Sequentials opened one level), with their names. */
export function namedBlocksOf(model: Module): NamedBlock[] {
  const parts = hasSequence(model) ? model.sequence() : model instanceof Sequential ? model.layers : null;
  if (!parts) {
    throw new ValueError(`memory plan: ${model.constructor.name} is not a chain of blocks (it has no sequence() and is not a Sequential)`);
  }
  const names = new Map<Module, string>();
  for (const [name, m] of model.namedModules()) if (!names.has(m)) names.set(m, name);
  return parts.flatMap((m) => m instanceof Sequential ? m.layers : [m]).map((module, i) => ({ name: names.get(module) || `block ${i}`, module }));
}

/** The blocks `model.forward` composes, in order. */
export function blocksOf(model: Module): Module[] {
  return namedBlocksOf(model).map((b) => b.module);
}
