/**
 * A short seeded training run, once with every probe on and once without, on whatever backend
 * is current: what the probes' promise to leave the run alone is tested with, on the CPU
 * (test/probed_run.test.ts, under Node and Deno) and on WebGPU (test/webgpu_probes.test.ts).
 * The model draws randomness in its forward pass (dropout in VGG's classifier, the noise of
 * noisy BatchNorm) and has BatchNorm statistics that move, so a probe that forked no stream or
 * froze no statistic would change the run.
 */
import * as assert from "uvu/assert";
import * as rg from "../../src/mod.ts";

export interface RunOutcome {
  /** Every state-dict tensor's values, by name. */
  weights: [string, number[]][];
  /** The optimiser's state (momentum buffers). */
  optimizer: [string, number[]][];
  /** Step records without their timing. */
  steps: unknown[];
  /** Epoch records without their timing. */
  epochs: unknown[];
  /** The probe records written, by probe name. */
  probes: rg.analysis.ProbeRecord[];
}

export const PROBED_CONFIG: rg.train.TrainConfig = {
  epochs: 2, steps: 0, batchSize: 16, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4,
  schedule: "cosine", warmup: 0.5, powerGrad: 1, labelSmoothing: 0.1, seed: 11, shuffle: true, augment: "standard",
  mean: [0.5], std: [0.25], evalBatchSize: 32,
};

/** Train `model` (built fresh by `make` after seeding) for two short epochs, probing every step when `probe`. */
export async function probedRun(
  make: () => rg.nn.Module, probe: boolean, data: { train: rg.data.Dataset; test: rg.data.Dataset }, options: rg.analysis.ProbeOptions = {},
): Promise<RunOutcome> {
  rg.manualSeed(PROBED_CONFIG.seed);
  const model = make();
  const trainer = new rg.train.Trainer(model, data.train, data.test, PROBED_CONFIG);
  const prober = new rg.analysis.Prober(rg.analysis.parseProbeSpec("all", 1), { curvature: { iterations: 2, samples: 2 }, ...options });
  const steps: unknown[] = [];
  const probes: rg.analysis.ProbeRecord[] = [];
  const { history } = await trainer.run({
    onStep: ({ imagesPerSec: _, ...record }) => void steps.push(record),
    probe: probe ? { due: (s) => prober.due(s), measure: async (s) => void probes.push(...await prober.measure(s)) } : undefined,
  });
  const read = async (entries: Iterable<[string, rg.Tensor]>) =>
    Promise.all([...entries].map(async ([k, t]) => [k, [...await t.data()]] as [string, number[]]));
  const optimizerState = trainer.optimizer.stateDict();
  const outcome: RunOutcome = {
    weights: await read(model.stateDict()), optimizer: await read(optimizerState), steps,
    epochs: history.map(({ seconds: _s, imagesPerSec: _i, ...record }) => record), probes,
  };
  for (const t of optimizerState.values()) t.dispose();
  model.dispose();
  return outcome;
}

/** `probed` (every probe at each of its `steps` steps) ended with the same bits as `plain`, and the probes measured something. */
export function assertSameRun(probed: RunOutcome, plain: RunOutcome, steps: number): void {
  assert.is(probed.probes.length, steps * rg.analysis.PROBE_NAMES.length, `every probe at each of the ${steps} steps`);
  assert.equal(probed.steps, plain.steps, "step records");
  assert.equal(probed.epochs, plain.epochs, "epoch records");
  assert.equal(probed.weights, plain.weights, "weights and BatchNorm buffers");
  assert.equal(probed.optimizer, plain.optimizer, "momentum buffers");
  assert.ok(probed.probes.every((r) => r.probe !== "landscape" || Number.isFinite(r.effectiveBetaSmoothness)), "the probes measured something");
}
