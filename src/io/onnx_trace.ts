/**
 * What a model computes, as a graph an exporter can walk: the model runs once in evaluation
 * mode on an example batch, recording. Known layers (Conv2d, BatchNorm2d, Linear, pools,
 * activations, Flatten, Dropout, Identity, squeeze-and-excitation) are recorded whole by a
 * forward hook, with the module itself, so its settings (stride, eps, running statistics)
 * come from the module; a hook also turns off the fused BatchNorm→ReLU path, so each of them
 * runs as its own module. The glue between modules (a residual add, a ReLU, a gate's product,
 * a flatten) is read from the autograd tape, whose nodes name their op and inputs. Anything
 * else is an OnnxExportError naming the op, never a silently different graph.
 */
import { enableGrad, type Node } from "../autograd.ts";
import { RetrogradError } from "../errors.ts";
import { type Tensor, zeros } from "../tensor.ts";
import type { Module } from "../nn/module.ts";
import {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Identity, Linear, MaxPool2d, ReLU, Sigmoid,
} from "../nn/layers.ts";
import { SqueezeExcitation } from "../nn/models/resnet.ts";

/** A model holds something ONNX export cannot express (the message says what and where). */
export class OnnxExportError extends RetrogradError {}

/** The layers recorded whole, by their module. */
export const TRACED_LAYERS = [
  Conv2d, BatchNorm2d, Linear, ReLU, Sigmoid, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Dropout, Identity,
  SqueezeExcitation,
] as const;
export type TracedLayer = InstanceType<(typeof TRACED_LAYERS)[number]>;

/** How a value of the graph was made. */
export type Producer =
  | { kind: "layer"; layer: TracedLayer; path: string; input: Tensor }
  | { kind: "op"; op: string; inputs: readonly Tensor[] };

export interface Trace {
  input: Tensor;
  output: Tensor;
  /** The maker of every value between input and output (absent: the input or a model tensor). */
  producers: Map<Tensor, Producer>;
  /** How many producers read each value (a conv whose output feeds only its BatchNorm may absorb it). */
  readers: Map<Tensor, number>;
  /** The model's parameters and buffers by state-dict name. */
  names: Map<Tensor, string>;
  /** Frees what the trace holds. */
  dispose(): void;
}

const isTraced = (m: Module): m is TracedLayer => TRACED_LAYERS.some((Layer) => m instanceof Layer);

/** Run `model` once in evaluation mode on zeros of [1, ...inputShape], recording. */
export function traceModel(model: Module, inputShape: readonly number[]): Trace {
  const modes = [...model.namedModules()].map(([, m]) => [m, m.training] as const);
  const layers = new Map<Tensor, Producer & { kind: "layer" }>();
  const hooks = [...model.namedModules()].filter(([, m]) => isTraced(m)).map(([path, m]) =>
    m.registerForwardHook((layer, input, output) => void layers.set(output, { kind: "layer", layer: layer as TracedLayer, path, input }))
  );
  const input = zeros([1, ...inputShape]);
  input.requireGrad(true); // so every op records a tape node, even one that touches no parameter
  let output: Tensor;
  try {
    model.eval();
    output = enableGrad(() => model.forward(input));
  } finally {
    for (const h of hooks) h.remove();
    for (const [m, training] of modes) m.training = training;
  }

  // Tape nodes by the value they produced: the output's node and every node upstream of it.
  const nodes = new Map<Tensor, Node>();
  const pending = [output.gradFn as Node | null];
  while (pending.length > 0) {
    const node = pending.pop();
    if (!node || nodes.get(node.output) === node) continue;
    nodes.set(node.output, node);
    pending.push(...node.inputNodes);
  }

  const producers = new Map<Tensor, Producer>();
  const readers = new Map<Tensor, number>();
  const visit = (t: Tensor) => {
    if (t === input || producers.has(t)) return;
    const layer = layers.get(t);
    const node = nodes.get(t);
    const producer: Producer | null = layer ?? (node ? { kind: "op", op: node.name, inputs: node.inputs } : null);
    if (!producer) return; // a parameter or buffer of the model
    producers.set(t, producer);
    for (const source of producer.kind === "layer" ? [producer.input] : producer.inputs) {
      readers.set(source, (readers.get(source) ?? 0) + 1);
      visit(source);
    }
  };
  visit(output);
  const names = new Map([...model.stateDict()].map(([name, t]) => [t, name]));
  return {
    input, output, producers, readers, names,
    dispose() {
      output.dispose();
      input.dispose();
    },
  };
}
