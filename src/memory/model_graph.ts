/**
 * A model's forward pass as a graph of ops (graph.ts), built from its structure and measured.
 * The chain of blocks (blocks.ts) is opened where the blocks say how: a ResNet's stem into its
 * steps (conv1, bn1+relu, maxpool) and each residual block into its branch's steps (conv1,
 * bn1+relu, conv2, …), its shortcut's (downsample.0, downsample.1; none for the identity) and
 * the join (the last BatchNorm fused with the add and the ReLU, as the block runs it), which
 * reads the branch's last value and the shortcut's. Any other block is one node. The ops are
 * the very steps the model's forward runs, in the same order, so a plan run over them computes
 * the same bits.
 *
 * `profileGraph` measures, after a warm-up step as profile.ts does: each node's output bytes
 * and what its op keeps besides (the allocator's own accounting), its FLOPs, and the fixed
 * bytes (in use at the start of the step, plus every parameter's gradient). Like profile.ts it
 * moves no running statistic, draws nothing from the global stream and leaves no gradient.
 */
import { grad } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import { getRandomState, withRandomState } from "../random.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { frozenStatsEverywhere } from "../nn/frozen_stats.ts";
import type { Module } from "../nn/module.ts";
import { type Step, stepOf } from "../nn/chain.ts";
import { ResidualBlock, Stem } from "../nn/models/resnet.ts";
import { namedBlocksOf } from "./blocks.ts";
import type { ComputationGraph, GraphNode } from "./graph.ts";
import { allocatedBytes, countingFlops, type ProfileOptions } from "./profile.ts";

/** One op of the forward pass: its name, the ops it reads (-1: the input), and how to run it. */
export interface OpNode {
  name: string;
  inputs: number[];
  run: (...inputs: Tensor[]) => Tensor;
}

/** The model's forward pass as ops, in the order it runs them (see the file's header). */
export function opsOf(model: Module): OpNode[] {
  const ops: OpNode[] = [];
  const push = (name: string, inputs: number[], run: OpNode["run"]) => ops.push({ name, inputs, run }) - 1;
  const steps = (from: number, prefix: string, named: [string, Step][]) =>
    named.reduce((at, [name, step]) => push(`${prefix}${name}`, [at], step), from);
  let at = -1;
  for (const { name, module } of namedBlocksOf(model)) {
    if (module instanceof ResidualBlock) {
      const { branch, shortcut, join } = module.parts();
      const b = steps(at, `${name}.`, branch);
      const s = steps(at, `${name}.`, shortcut);
      at = push(`${name}.join`, [b, s], join);
    } else if (module instanceof Stem) {
      at = steps(at, "stem.", module.steps());
    } else {
      at = push(name, [at], stepOf(module));
    }
  }
  return ops;
}

/** Run `ops` recording, keeping every value; `each` sees each node's value as it is made. */
function runAll(ops: readonly OpNode[], x: Tensor, each: (v: number, y: Tensor) => void): Tensor[] {
  const values: Tensor[] = [];
  ops.forEach((op, v) => {
    const y = op.run(...op.inputs.map((u) => (u < 0 ? x : values[u])));
    values.push(y);
    each(v, y);
  });
  return values;
}

/** Measure `model`'s op graph on the batch `x` with the loss `loss` (see the file's header). */
export function profileGraph(model: Module, x: Tensor, loss: (out: Tensor) => Tensor, opts: ProfileOptions = {}): ComputationGraph {
  const extra = opts.extraBytes ?? 0;
  if (!(extra >= 0)) throw new ValueError(`profileGraph: extraBytes must be ≥ 0, got ${extra}`);
  const ops = opsOf(model);
  const backend = x.backend;
  const inUse = () => backend.memory().bytesInUse;
  const params = model.parameters().filter((p, i, all) => p.requiresGrad && all.indexOf(p) === i);
  return withRandomState(getRandomState(), () => frozenStatsEverywhere(() => {
    // Warm-up: the kernels' scratch grows to its size for these shapes and stays.
    tidy(() => void grad(loss(model.forward(x)), params, { allowUnused: true }));
    const base = inUse();
    const nodes: GraphNode[] = countingFlops([model], (flopsOf) => tidy(() => {
      const out: GraphNode[] = [];
      let before = inUse();
      runAll(ops, x, (v, y) => {
        const outputBytes = allocatedBytes(backend, y.shape);
        out.push({ name: ops[v].name, inputs: [...ops[v].inputs], outputBytes, savedBytes: inUse() - before - outputBytes, flops: flopsOf() + y.size });
        before = inUse();
      });
      return out;
    }));
    const gradientBytes = params.reduce((sum, p) => sum + allocatedBytes(backend, p.shape), 0);
    return { nodes, fixedBytes: base + gradientBytes + extra, backend: backend.name, inputShape: [...x.shape] };
  }));
}
