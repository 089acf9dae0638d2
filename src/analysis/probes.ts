/**
 * The probes by name, and the Prober that runs them on a schedule: `retrograd train --probe
 * ics,landscape@20` and `rg.analysis.Prober`. Each probe measures one step (ProbedStep) without
 * changing the run: it evaluates the model only through the batch objective (objective.ts:
 * the model's own tensors untouched, BatchNorm statistics frozen, the step's random stream
 * forked, no `.grad`), so a run with every probe on ends with the same bits as one without.
 *
 *   layers       per parameter tensor: ‖W‖, ‖∇L‖, ‖ΔW‖/‖W‖                    (layer_stats.ts)
 *   activations  quantiles, moments and a histogram of chosen layers' outputs (activations.ts)
 *   ics          Santurkar et al.'s internal covariate shift per layer            (ics.ts)
 *   landscape    loss variation, gradient predictiveness, effective β-smoothness (landscape.ts)
 *   curvature    top Hessian eigenvalue and Hessian trace                         (curvature.ts)
 *   logits       the PowerGrad authors' LStat of the batch's logits at W^t        (logit_stats.ts)
 *   filters      per-filter L2 norms at W^t and the zeroed filters                (filter_norms.ts)
 *
 * Every probe measures at W^t, the weights the step's gradient was taken at (the update enters
 * only where a definition needs it: the update ratio, ICS). A record is { type: "probe", probe,
 * step, epoch, lr, ...measures }, one per probe and step.
 */
import { ValueError } from "../errors.ts";
import { activationStatistics, defaultActivationLayers } from "./activations.ts";
import { curvature, type CurvatureOptions } from "./curvature.ts";
import { countZeroed, filterLayers, filterNorms, median } from "./filter_norms.ts";
import { internalCovariateShift } from "./ics.ts";
import { DEFAULT_STEP_MULTIPLIERS, lossLandscape } from "./landscape.ts";
import { layerStatistics } from "./layer_stats.ts";
import { logitStats } from "./logit_stats.ts";
import { type ProbedStep, StepContext } from "./probed_step.ts";

export const PROBE_NAMES = ["layers", "activations", "ics", "landscape", "curvature", "logits", "filters"] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

export interface ProbeOptions {
  /** Modules whose outputs the activations probe summarises (default: activations.ts). */
  activationLayers?: readonly string[];
  /** Histogram bins of the activations probe (default 32). */
  bins?: number;
  /** η′/η of the landscape probe's grid (default ½ … 4 in steps of ½). */
  stepMultipliers?: readonly number[];
  curvature?: CurvatureOptions;
}

export interface ProbeRecord {
  type: "probe";
  probe: ProbeName;
  step: number;
  epoch: number;
  lr: number;
  [measure: string]: unknown;
}

type Probe = (ctx: StepContext, options: ProbeOptions) => Promise<object>;

const PROBES: Record<ProbeName, Probe> = {
  layers: (ctx) => layerStatistics(ctx),
  activations: (ctx, o) => activationStatistics(ctx, o.activationLayers ?? defaultActivationLayers(ctx.step.model), o.bins),
  ics: (ctx) => internalCovariateShift(ctx),
  landscape: (ctx, o) => lossLandscape(ctx, o.stepMultipliers ?? DEFAULT_STEP_MULTIPLIERS),
  curvature: (ctx, o) => curvature(ctx, o.curvature),
  logits: async (ctx) => {
    const logits = ctx.objective.logits(ctx.step.before);
    try {
      return await logitStats(logits);
    } finally {
      logits.dispose();
    }
  },
  filters: async (ctx) => {
    const layers = [];
    for (const { name, weight } of filterLayers(ctx.step.model)) {
      const norms = await filterNorms(ctx.step.before.get(weight)!);
      layers.push({ name, norms: [...norms], zeroed: countZeroed(norms), smallestOverMedian: Math.min(...norms) / median(norms) });
    }
    return { zeroed: layers.reduce((n, l) => n + l.zeroed, 0), layers };
  },
};

/**
 * "ics,landscape@20,curvature@500" (or "all"): which probes, each every `every` steps unless
 * it says @k. A bad name or period is a ValueError naming it.
 */
export function parseProbeSpec(spec: string, every: number): Map<ProbeName, number> {
  const schedule = new Map<ProbeName, number>();
  for (const entry of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [name, period] = entry.split("@");
    const k = period === undefined ? every : Number(period);
    if (!Number.isInteger(k) || k < 1) throw new ValueError(`probe "${entry}": the period after @ must be a positive integer`);
    if (name === "all") PROBE_NAMES.forEach((n) => schedule.set(n, k));
    else if ((PROBE_NAMES as readonly string[]).includes(name)) schedule.set(name as ProbeName, k);
    else throw new ValueError(`unknown probe "${name}"; probes: ${PROBE_NAMES.join(", ")}, all`);
  }
  if (schedule.size === 0) throw new ValueError(`no probes in "${spec}"; probes: ${PROBE_NAMES.join(", ")}, all`);
  return schedule;
}

export class Prober {
  constructor(readonly schedule: ReadonlyMap<ProbeName, number>, readonly options: ProbeOptions = {}) {}

  /** The probes due at `step`, in PROBE_NAMES order. */
  dueAt(step: number): ProbeName[] {
    return PROBE_NAMES.filter((name) => this.schedule.has(name) && step % this.schedule.get(name)! === 0);
  }

  due(step: number): boolean {
    return this.dueAt(step).length > 0;
  }

  /** Run the probes due at the step (or `names`), sharing the gradient at W^t among them. */
  async measure(step: ProbedStep, names: readonly ProbeName[] = this.dueAt(step.step)): Promise<ProbeRecord[]> {
    const ctx = new StepContext(step);
    try {
      const records: ProbeRecord[] = [];
      for (const probe of names) {
        const measures = await PROBES[probe](ctx, this.options);
        records.push({ type: "probe", probe, step: step.step, epoch: step.epoch, lr: step.lr, ...measures });
      }
      return records;
    } finally {
      await ctx.dispose();
    }
  }
}
