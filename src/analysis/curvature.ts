/**
 * Curvature of the loss of one batch at W: the Hessian's eigenvalue of largest magnitude, by
 * power iteration, and its trace, by Hutchinson's estimator, both from Hessian-vector
 * products taken as central differences of gradients,
 *
 *   H·v ≈ (∇L(W + h·v) − ∇L(W − h·v)) / 2h,   h = δ/‖v‖₂,   δ = ε·‖W‖₂,
 *
 * so the weights move by δ in norm whatever v's scale. ε (default 1e-3) balances two errors:
 * the weights and gradients are float32, so rounding adds an error to H·v that grows as 1/δ,
 * while the third-order term grows as δ², and a larger step is likelier to carry a ReLU input
 * across its kink (a jump the Hessian does not have). On the test network (171 weights, ‖W‖
 * about 5) the product's relative error was 6e-3 at δ = 1e-4, 6e-4 at 1e-3, 5e-5 at 1e-2 and
 * 1.3e-4 at 3e-2. The tape has no double backward; two gradients cost the same as one double
 * backward and work on every backend. Each gradient is an evaluation of the batch objective
 * (objective.ts), so nothing of the run moves.
 *
 * - Power iteration: v₀ ~ N(0, I) normalised, v_{k+1} = Hv_k/‖Hv_k‖, λ_k = v_kᵀHv_k (the
 *   Rayleigh quotient); it stops when |λ_k − λ_{k−1}| ≤ tolerance·|λ_k| or after `iterations`.
 *   It finds the eigenvalue of largest magnitude (the top one when it dominates, as it does in
 *   trained networks; a negative one of larger magnitude would be found instead).
 * - Hutchinson: tr H = E[zᵀHz] for z with independent ±1 entries; the estimate is the mean
 *   over `samples` draws, with its standard error.
 *
 * Random directions come from a stream of the probe's own (StepContext.stream), never the run's.
 */
import { noGrad } from "../autograd.ts";
import { getRandomState, type RandomState, withRandomState } from "../random.ts";
import { bernoulli, keep, randn, type Tensor, tidy } from "../tensor.ts";
import { mul, sub } from "../ops/elementwise.ts";
import { axpy, difference, disposeParams, dot, norm, type ParamMap, scaled } from "./param_maps.ts";
import type { BatchObjective } from "./objective.ts";
import type { StepContext } from "./probed_step.ts";

export interface CurvatureOptions {
  /** Norm of the finite differences' weight perturbation, relative to ‖W‖₂ (default 1e-3). */
  epsilon?: number;
  /** Power-iteration steps at most (default 20). */
  iterations?: number;
  /** Relative change of the eigenvalue estimate that ends the power iteration (default 1e-3). */
  tolerance?: number;
  /** Hutchinson samples (default 16). */
  samples?: number;
}

/** H·v at `at` by central differences of gradients, the weights moved by `delta` in norm (see the file's header). */
export async function hessianVectorProduct(objective: BatchObjective, at: ParamMap, v: ParamMap, delta: number): Promise<Map<string, Tensor>> {
  const h = delta / (await norm(v));
  const plus = axpy(at, h, v), minus = axpy(at, -h, v);
  const up = objective.valueAndGrad(plus), down = objective.valueAndGrad(minus);
  const change = difference(up.grads, down.grads);
  const product = scaled(change, 1 / (2 * h));
  for (const t of [up.loss, down.loss]) t.dispose();
  for (const map of [plus, minus, up.grads, down.grads, change]) disposeParams(map);
  return product;
}

/** Tensors shaped like `like`, filled by `draw` on the stream `state`; returns them and the stream's state after. */
function drawLike(like: ParamMap, state: RandomState, draw: (like: Tensor) => Tensor): { values: Map<string, Tensor>; next: RandomState } {
  return withRandomState(state, () => {
    const values = new Map([...like].map(([name, t]) => [name, keep(noGrad(() => tidy(() => draw(t))))]));
    return { values, next: getRandomState() };
  });
}

/** δ = ε·‖W‖₂. */
async function perturbation(at: ParamMap, opts: CurvatureOptions): Promise<number> {
  return (opts.epsilon ?? 1e-3) * (await norm(at));
}

export async function topEigenvalue(
  objective: BatchObjective, at: ParamMap, stream: RandomState, opts: CurvatureOptions = {},
): Promise<{ value: number; iterations: number; converged: boolean }> {
  const iterations = opts.iterations ?? 20, tolerance = opts.tolerance ?? 1e-3;
  const delta = await perturbation(at, opts);
  const start = drawLike(at, stream, (t) => randn(t.shape, {}, t.backend)).values;
  let v = scaled(start, 1 / (await norm(start)));
  disposeParams(start);
  let value = NaN;
  for (let k = 1; k <= iterations; k++) {
    const hv = await hessianVectorProduct(objective, at, v, delta);
    const previous = value;
    value = await dot(v, hv);
    disposeParams(v);
    v = scaled(hv, 1 / (await norm(hv)));
    disposeParams(hv);
    if (Math.abs(value - previous) <= tolerance * Math.abs(value)) {
      disposeParams(v);
      return { value, iterations: k, converged: true };
    }
  }
  disposeParams(v);
  return { value, iterations, converged: false };
}

export async function hutchinsonTrace(
  objective: BatchObjective, at: ParamMap, stream: RandomState, opts: CurvatureOptions = {},
): Promise<{ value: number; standardError: number; samples: number }> {
  const samples = opts.samples ?? 16;
  const delta = await perturbation(at, opts);
  const estimates: number[] = [];
  let state = stream;
  for (let k = 0; k < samples; k++) {
    const { values: z, next } = drawLike(at, state, (t) => sub(mul(bernoulli(t.shape, 0.5, t.backend), 2), 1));
    state = next;
    const hz = await hessianVectorProduct(objective, at, z, delta);
    estimates.push(await dot(z, hz));
    disposeParams(z);
    disposeParams(hz);
  }
  const mean = estimates.reduce((a, b) => a + b, 0) / samples;
  const variance = samples > 1 ? estimates.reduce((a, e) => a + (e - mean) ** 2, 0) / (samples - 1) : NaN;
  return { value: mean, standardError: Math.sqrt(variance / samples), samples };
}

/** Both measures at W^t on the step's batch, each on its own stream. */
export async function curvature(ctx: StepContext, opts: CurvatureOptions = {}) {
  const { objective } = ctx;
  const at = ctx.step.before;
  const top = await topEigenvalue(objective, at, ctx.stream(0x70e1), opts);
  const trace = await hutchinsonTrace(objective, at, ctx.stream(0x7ace), opts);
  return {
    topEigenvalue: top.value, powerIterations: top.iterations, converged: top.converged,
    trace: trace.value, traceStandardError: trace.standardError, traceSamples: trace.samples,
  };
}
