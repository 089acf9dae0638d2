/**
 * Learning-rate schedules as plain functions from an epoch (or step) index to a rate, with
 * the values torch.optim.lr_scheduler produces for one scheduler.step() per index.
 * Composable: `warmup(cosine(...))` is SequentialLR([LinearLR, CosineAnnealingLR]).
 */
import { ValueError } from "../errors.ts";

export type Schedule = (t: number) => number;

export function constant(lr: number): Schedule {
  return () => lr;
}

/** StepLR: lr·gamma^⌊t/stepSize⌋. */
export function step(lr: number, stepSize: number, gamma = 0.1): Schedule {
  if (!(stepSize > 0)) throw new ValueError(`step schedule: stepSize must be > 0, got ${stepSize}`);
  return (t) => lr * gamma ** Math.floor(t / stepSize);
}

/** MultiStepLR: lr·gamma^(number of milestones ≤ t). */
export function multiStep(lr: number, milestones: readonly number[], gamma = 0.1): Schedule {
  return (t) => lr * gamma ** milestones.filter((m) => m <= t).length;
}

/** CosineAnnealingLR: from lr at t = 0 to etaMin at t = tMax. */
export function cosine(lr: number, tMax: number, etaMin = 0): Schedule {
  if (!(tMax > 0)) throw new ValueError(`cosine schedule: tMax must be > 0, got ${tMax}`);
  return (t) => etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * Math.min(t, tMax)) / tMax))) / 2;
}

/**
 * Linear warm-up from startFactor·lr over `iters` indices, then `after` (restarted at 0), as
 * SequentialLR([LinearLR(startFactor, total_iters=iters), after], milestones=[iters]).
 */
export function warmup(after: Schedule, iters: number, startFactor = 0.1): Schedule {
  if (iters <= 0) return after;
  const peak = after(0);
  return (t) => (t < iters ? peak * (startFactor + ((1 - startFactor) * t) / iters) : after(t - iters));
}
