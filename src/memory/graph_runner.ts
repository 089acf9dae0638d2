/**
 * Running a graph plan (graph_planner.ts) over a model's ops (model_graph.ts): each segment in
 * turn, a recomputed one as one checkpoint (checkpointMany: its inputs are the values of
 * earlier segments it reads, its outputs the values later segments read), a recorded one as
 * usual; every value is let go as soon as no later op reads it, and what a graph or a
 * checkpoint saved lives on in them. `GraphPlannedModel` trains a model through such a plan, as
 * PlannedModel does for a chain plan: the model is its inline child (same state dict,
 * parameters and modules), and in evaluation or without gradient recording it is the model's
 * plain forward.
 */
import { isGradEnabled } from "../autograd.ts";
import { ValueError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "../nn/module.ts";
import { checkpointMany } from "./checkpoint.ts";
import type { GraphPlan } from "./graph_planner.ts";
import { type OpNode, opsOf } from "./model_graph.ts";

/** Check that `plan` runs every op once, each after the ops it reads. */
function checkPlanRuns(ops: readonly OpNode[], plan: GraphPlan): number[] {
  const segmentOf = new Array<number>(ops.length).fill(-1);
  plan.segments.forEach((segment, k) => {
    let previous = -1;
    for (const v of segment.nodes) {
      if (!(v > previous && v < ops.length) || segmentOf[v] !== -1) {
        throw new ValueError(`graph plan: segment ${k} lists node ${v}; a segment lists nodes of the graph (${ops.length}) once, in increasing order`);
      }
      segmentOf[v] = k;
      previous = v;
    }
  });
  const missing = segmentOf.indexOf(-1);
  if (missing >= 0) throw new ValueError(`graph plan: node ${missing} (${ops[missing].name}) is in no segment`);
  ops.forEach((op, v) => {
    for (const u of op.inputs) {
      if (u >= 0 && segmentOf[u] > segmentOf[v]) throw new ValueError(`graph plan: node ${v} (${op.name}) runs in segment ${segmentOf[v]}, before node ${u} it reads (segment ${segmentOf[u]})`);
    }
  });
  return segmentOf;
}

/** `x` through `ops` as `plan` cuts them; returns the last op's value. */
export function runGraphPlan(ops: readonly OpNode[], plan: GraphPlan, x: Tensor): Tensor {
  const segmentOf = checkPlanRuns(ops, plan);
  const last = ops.length - 1;
  // The last segment that reads each value (the output: the caller's).
  const lastRead = new Array<number>(ops.length).fill(-1);
  ops.forEach((op, v) => op.inputs.forEach((u) => {
    if (u >= 0) lastRead[u] = Math.max(lastRead[u], segmentOf[v]);
  }));
  lastRead[last] = Infinity;
  const values = new Map<number, Tensor>([[-1, x]]);
  plan.segments.forEach(({ nodes, recompute }, k) => {
    const inside = new Set(nodes);
    const inputs = [...new Set(nodes.flatMap((v) => ops[v].inputs.filter((u) => !inside.has(u))))].sort((a, b) => a - b);
    const outputs = nodes.filter((v) => lastRead[v] > k);
    const lastUse = new Map<number, number>();
    nodes.forEach((v, pos) => ops[v].inputs.forEach((u) => lastUse.set(u, pos)));
    const run = (...given: Tensor[]): Tensor[] => {
      const local = new Map<number, Tensor>(inputs.map((u, i) => [u, given[i]]));
      nodes.forEach((v, pos) => {
        local.set(v, ops[v].run(...ops[v].inputs.map((u) => local.get(u)!)));
        for (const u of new Set(ops[v].inputs)) {
          if (lastUse.get(u) === pos && inside.has(u) && !outputs.includes(u)) local.get(u)!.dispose();
        }
      });
      return outputs.map((v) => local.get(v)!);
    };
    const given = inputs.map((u) => values.get(u)!);
    const made = recompute ? checkpointMany(run, ...given) : run(...given);
    outputs.forEach((v, i) => values.set(v, made[i]));
    for (const [u, t] of values) {
      if (u >= 0 && lastRead[u] <= k) {
        t.dispose();
        values.delete(u);
      }
    }
  });
  return values.get(last)!;
}

export class GraphPlannedModel extends Module {
  private readonly ops: OpNode[];

  constructor(readonly model: Module, readonly plan: GraphPlan) {
    super();
    this.ops = opsOf(model);
    checkPlanRuns(this.ops, plan);
    this.module("model", model, { inline: true });
  }

  forward(x: Tensor): Tensor {
    return this.training && isGradEnabled() ? runGraphPlan(this.ops, this.plan, x) : this.model.forward(x);
  }
}
