/**
 * `retrograd train --memory-budget MiB [--memory-plan optimal|greedy|sqrt|none|graph]`: profile
 * one training step of the model on a batch of the run's shape (for "graph": its graph of ops,
 * planned by Kusumoto et al.'s lower-set program), choose a recomputation plan whose
 * predicted peak fits the budget (a budget no plan fits is refused, naming the smallest that
 * does), print it and train through it. The plan and its predicted peak go to config.json (a
 * resumed run reads them back, checked, and trains through the same plan), the measured peak
 * to the step records of metrics.jsonl. Evaluation then runs at the training batch size, so
 * that it stays inside the budget too.
 */
import * as rg from "../src/mod.ts";
import type { Module } from "../src/nn/module.ts";
import type { Dataset } from "../src/data/dataset.ts";
import type { TrainConfig } from "../src/train/index.ts";
import type { Fields } from "../src/io/fields.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";

const MiB = 2 ** 20;

/** The chain's planners, and the program over the graph of ops. */
const MEMORY_PLANS = [...rg.recompute.PLAN_METHODS, "graph"] as const;

export const MEMORY_FLAGS: Flag[] = [
  { name: "memory-budget", type: "number", default: undefined, min: 0, exclusiveMin: true, help: "train within this peak memory in MiB (rg.memory().peakBytes of a step): recompute parts of the forward pass as planned to fit; ResNet models" },
  { name: "memory-plan", type: "string", default: "optimal", choices: MEMORY_PLANS, help: "with --memory-budget: optimal (fewest recomputed FLOPs over cuts between blocks, exact), greedy (Chen et al.), sqrt (√n segments), none, or graph (Kusumoto et al.'s lower-set program over the ops, cuts inside residual blocks too)" },
];

/** What config.json keeps of the plan. */
export interface MemorySettings {
  budgetMiB: number;
  plan: rg.recompute.PlanSummary;
}

/** config.json's `memory`, checked field by field (a CheckpointError names a bad one). */
export function readMemorySettings(f: Fields): MemorySettings {
  const p = f.object("plan");
  const nonNegative = (name: string) => p.number(name, { min: 0 });
  return {
    budgetMiB: f.number("budgetMiB", { min: Number.MIN_VALUE }),
    plan: {
      method: p.string("method", MEMORY_PLANS), budgetBytes: nonNegative("budgetBytes"),
      segments: p.objects("segments").map((s) => ({ start: s.int("start"), end: s.int("end"), recompute: s.boolean("recompute"), blocks: s.strings("blocks") })),
      ...(p.has("graphSegments") ? { graphSegments: p.objects("graphSegments").map((s) => ({ nodes: s.numbers("nodes"), recompute: s.boolean("recompute"), names: s.strings("names") })) } : {}),
      predictedPeakBytes: nonNegative("predictedPeakBytes"), keepAllPeakBytes: nonNegative("keepAllPeakBytes"),
      smallestFeasibleBytes: nonNegative("smallestFeasibleBytes"), extraForwardFlops: nonNegative("extraForwardFlops"), forwardFlops: nonNegative("forwardFlops"),
      backend: p.string("backend"), inputShape: p.numbers("inputShape"),
    },
  };
}

/** The plan's part of a run: the model to train, and the peak measured step by step. */
export interface MemoryRun {
  model: Module;
  settings: MemorySettings;
  /** After each training step: take its peak. */
  afterStep(): void;
  /** Fields for a step record: the largest step peak since the last record. */
  recordFields(): { peakBytes: number };
  /** After an epoch's evaluation: its peak is not a training step's. */
  afterEpoch(): void;
  /** The largest step peak so far. */
  readonly measuredPeakBytes: number;
}

/**
 * How many tensors like each parameter the optimiser keeps between steps: Adam's, AdamW's and
 * LAMB's two moments, else one momentum buffer where momentum is on (SGD, LARS, scale-amended
 * SGD); an EMA of the weights is one more. (The 0-d step counters and per-layer scalars are
 * left out: a few bytes per parameter tensor.)
 */
function optimizerStateCopies(train: TrainConfig): number {
  const settings = train.optimizer;
  const moments = settings?.name === "adam" || settings?.name === "adamw" || settings?.name === "lamb" ? 2 : train.momentum > 0 ? 1 : 0;
  return moments + (settings?.ema ? 1 : 0);
}

/** Bytes one tensor like each of `params` takes (one copy of the optimiser's per-parameter state). */
function copiesBytes(params: readonly rg.Tensor[]): number {
  const before = rg.memory().bytesInUse;
  const copies = params.map((p) => rg.zeros(p.shape));
  const bytes = rg.memory().bytesInUse - before;
  for (const c of copies) c.dispose();
  return bytes;
}

/** Profile `model` on a batch shaped like `data`'s and choose a plan for the budget. */
function plan(model: Module, flags: FlagValues, data: Dataset, train: TrainConfig): MemorySettings {
  const budgetMiB = flags["memory-budget"] as number;
  const method = flags["memory-plan"] as (typeof MEMORY_PLANS)[number];
  const batch = train.batchSize;
  const x = rg.withRandomState(0, () => rg.randn([batch, data.channels, data.height, data.width]));
  const labels = Array.from({ length: batch }, (_, i) => i % data.classes);
  try {
    const extraBytes = optimizerStateCopies(train) * copiesBytes(model.parameters());
    if (method === "graph") {
      const graph = rg.recompute.profileModelGraph(model, x, labels, { extraBytes });
      return { budgetMiB, plan: rg.recompute.summarizeGraphPlan(rg.recompute.chooseGraphPlan(graph, budgetMiB * MiB), graph) };
    }
    const profile = rg.recompute.profileModel(model, x, labels, { extraBytes });
    const chosen = rg.recompute.choosePlan(profile, method, budgetMiB * MiB);
    return { budgetMiB, plan: rg.recompute.summarizePlan(chosen, profile) };
  } catch (error) {
    if (error instanceof rg.MemoryBudgetError || error instanceof rg.ValueError) throw new UsageError(`--memory-budget ${budgetMiB}: ${error.message}`);
    throw error;
  } finally {
    x.dispose();
  }
}

/**
 * The memory plan of this run, or null without --memory-budget: chosen now for a new run
 * (`saved` undefined), or the one config.json recorded for a resumed run.
 */
export function setUpMemoryPlan(
  model: Module, flags: FlagValues, saved: MemorySettings | undefined, data: Dataset, train: TrainConfig,
  log: { write(s: string): unknown },
): MemoryRun | null {
  if (saved === undefined && flags["memory-budget"] === undefined) return null;
  const settings = saved ?? plan(model, flags, data, train);
  train.evalBatchSize = train.batchSize;
  log.write(`${rg.recompute.describePlan(settings.plan)}\n`);
  const graphPlan = rg.recompute.graphPlanOf(settings.plan);
  const planned = graphPlan ? new rg.recompute.GraphPlannedModel(model, graphPlan) : new rg.recompute.PlannedModel(model, rg.recompute.planOf(settings.plan));
  let measured = 0;
  let sinceRecord = 0;
  const backend = rg.getBackend();
  backend.resetPeak();
  return {
    model: planned,
    settings,
    afterStep() {
      const peak = backend.memory().peakBytes;
      measured = Math.max(measured, peak);
      sinceRecord = Math.max(sinceRecord, peak);
      backend.resetPeak();
    },
    recordFields() {
      const fields = { peakBytes: sinceRecord };
      sinceRecord = 0;
      return fields;
    },
    afterEpoch: () => backend.resetPeak(),
    get measuredPeakBytes() {
      return measured;
    },
  };
}
