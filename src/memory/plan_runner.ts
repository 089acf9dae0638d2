/**
 * Running a plan: the chain's blocks, each kept segment run as recorded and each recomputed
 * one as a checkpoint, the tensor between two segments freed as soon as the next has run (so
 * the step follows the cost model that predicted it). `PlannedModel` wraps a model so that
 * anything that calls `forward` (the Trainer, the CLI) trains through a plan: it holds the model
 * as an inline child, so its state dict, parameters and modules are the model's own, and in
 * evaluation or without gradient recording it is the model's plain forward.
 */
import { isGradEnabled } from "../autograd.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "../nn/module.ts";
import { chain, type Step, stepOf } from "../nn/chain.ts";
import { checkpoint } from "./checkpoint.ts";
import { blocksOf } from "./blocks.ts";
import { checkPlanCovers, type Plan } from "./cost_model.ts";

/** `x` through `blocks` as `plan` cuts them. */
export function runPlan(blocks: readonly Module[], plan: Plan, x: Tensor): Tensor {
  checkPlanCovers(plan, blocks.length);
  return chain(x, plan.segments.flatMap(({ start, end, recompute }): Step[] => {
    const steps = blocks.slice(start, end).map(stepOf);
    return recompute ? [(t) => checkpoint((h) => chain(h, steps), t)] : steps;
  }));
}

export class PlannedModel extends Module {
  private readonly blocks: Module[];

  constructor(readonly model: Module, readonly plan: Plan) {
    super();
    this.blocks = blocksOf(model);
    checkPlanCovers(plan, this.blocks.length);
    this.module("model", model, { inline: true });
  }

  forward(x: Tensor): Tensor {
    return this.training && isGradEnabled() ? runPlan(this.blocks, this.plan, x) : this.model.forward(x);
  }
}
