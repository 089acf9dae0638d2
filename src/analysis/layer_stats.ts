/**
 * Per-layer statistics of a step, for every parameter tensor by its state-dict name: the
 * weight norm ‖W^t‖₂, the norm of the loss gradient ‖∇L(W^t)‖₂ on the step's batch, and the
 * update-to-weight ratio ‖W^{t+1} − W^t‖₂ / ‖W^t‖₂ (the whole update the optimiser made:
 * momentum and weight decay included). The ratio is the usual first look at whether a layer
 * learns too fast or not at all.
 */
import { difference, disposeParams, dotsPerTensor } from "./param_maps.ts";
import type { StepContext } from "./probed_step.ts";

export interface ParameterStats {
  name: string;
  weightNorm: number;
  gradNorm: number;
  updateRatio: number;
}

export async function layerStatistics(ctx: StepContext): Promise<{ layers: ParameterStats[] }> {
  const { before, after } = ctx.step;
  const { grads } = await ctx.gradient();
  const update = difference(after, before);
  const [weights, gradients, updates] = await Promise.all([
    dotsPerTensor(before, before), dotsPerTensor(grads, grads), dotsPerTensor(update, update),
  ]);
  disposeParams(update);
  const layers = [...before.keys()].map((name) => {
    const weightNorm = Math.sqrt(weights.get(name)!);
    return { name, weightNorm, gradNorm: Math.sqrt(gradients.get(name)!), updateRatio: Math.sqrt(updates.get(name)!) / weightNorm };
  });
  return { layers };
}
