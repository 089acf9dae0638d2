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

/** The blocks `model.forward` composes, in order (Sequentials opened one level). */
export function blocksOf(model: Module): Module[] {
  const parts = hasSequence(model) ? model.sequence() : model instanceof Sequential ? model.layers : null;
  if (!parts) {
    throw new ValueError(`memory plan: ${model.constructor.name} is not a chain of blocks (it has no sequence() and is not a Sequential)`);
  }
  return parts.flatMap((m) => m instanceof Sequential ? m.layers : [m]);
}
