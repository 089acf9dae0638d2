/// <reference types="@webgpu/types" />
/**
 * The probes of the backward pass on WebGPU. (1) Every probe on the probe fixture's network
 * with BatchNorm (test/support/probe_net.ts), on the GPU and on the CPU from the same weights,
 * batch and update, gives the same measures within the float32 tolerances stated below, and
 * leaves the GPU model's weights, BatchNorm buffers and memory as they were. (2) A short
 * training run on the GPU with every probe on at every step ends with bitwise the same weights,
 * BatchNorm statistics, momentum buffers and metrics as the same run without probes (the CPU's
 * twin is test/probed_run.test.ts). Small on purpose: CI runs this on lavapipe (Vulkan on the
 * CPU, two cores). Skipped where no adapter exists (Node; Deno without a driver).
 */
import * as assert from "uvu/assert";
import { test } from "uvu";
import * as rg from "../src/mod.ts";
import { gpuTest, mirrorOnGpu } from "./support/gpu.ts";
import { probeFixtureStep, probeNet, probeNetLayers } from "./support/probe_net.ts";
import { assertSameRun, probedRun } from "./support/probed_run.ts";

/**
 * GPU against CPU, per probe. The backends reduce in other orders, so a gradient differs by a
 * few float32 roundings (the layers probe saw ~2e-7 relative): norms, moments, quantiles,
 * losses and logit statistics of one evaluation agree to 1e-5; quantities made of differences
 * of two gradients (ICS, the landscape's gradient changes and β) lose a digit or two to
 * cancellation, 1e-4 (as against PyTorch in test/probes.test.ts). Curvature divides a
 * difference of gradients by 2h (h = 1e-3·‖W‖/‖v‖, ‖W‖ ≈ 5), magnifying the backends' ~1e-7
 * differences (about a hundredfold for a unit v), and power iteration compounds them over its
 * steps: 1e-3 (seen: 4e-6 for the eigenvalue, 3e-5 for the trace). The absolute floor covers
 * a conv bias before BatchNorm, whose gradient is float32 noise (~1e-8) on both.
 */
const TOLERANCE: Record<rg.analysis.ProbeName, { rtol: number; atol: number }> = {
  layers: { rtol: 1e-5, atol: 1e-7 }, activations: { rtol: 1e-5, atol: 1e-6 }, logits: { rtol: 1e-5, atol: 1e-7 },
  filters: { rtol: 1e-5, atol: 0 }, ics: { rtol: 1e-4, atol: 1e-7 }, landscape: { rtol: 1e-4, atol: 1e-7 },
  curvature: { rtol: 1e-3, atol: 0 },
};
/** Power iteration runs to its cap (tolerance 0), so both backends take the same number of steps. */
const CURVATURE = { iterations: 12, tolerance: 0, samples: 4 };

async function measureAll(model: rg.nn.Module, backend?: rg.Backend): Promise<rg.analysis.ProbeRecord[]> {
  const step = probeFixtureStep(model, backend);
  const records = await new rg.analysis.Prober(rg.analysis.parseProbeSpec("all", 1), { curvature: CURVATURE }).measure(step);
  rg.analysis.disposeParams(step.before);
  if (backend) for (const t of [step.batch.x, ...step.after.values()]) t.dispose();
  return records;
}

/**
 * `gpu` against `cpu` field by field: same keys, same strings and booleans, numbers within `tol`.
 * A histogram may differ by a value or two that sit on a bin edge (counted, at most 2 moved).
 */
function agree(gpu: unknown, cpu: unknown, path: string, tol: { rtol: number; atol: number }): void {
  if (typeof cpu === "number") {
    assert.type(gpu, "number", path);
    const ok = Math.abs((gpu as number) - cpu) <= tol.atol + tol.rtol * Math.abs(cpu);
    assert.ok(ok, `${path}: GPU ${gpu}, CPU ${cpu} (rtol ${tol.rtol}, atol ${tol.atol})`);
  } else if (path.endsWith(".histogram")) {
    const [g, c] = [gpu as number[], cpu as number[]];
    assert.is(g.length, c.length, `${path}: bins`);
    const moved = g.reduce((s, n, i) => s + Math.abs(n - c[i]), 0) / 2;
    assert.ok(moved <= 2, `${path}: ${moved} values in other bins`);
  } else if (cpu !== null && typeof cpu === "object") {
    assert.equal(Object.keys(gpu as object), Object.keys(cpu), `${path}: keys`);
    for (const [key, value] of Object.entries(cpu)) agree((gpu as Record<string, unknown>)[key], value, `${path}.${key}`, tol);
  } else {
    assert.is(gpu, cpu, path);
  }
}

gpuTest("webgpu probes: every probe on the fixture network with BatchNorm equals the CPU's; the GPU model is left as it was", async (g) => {
  const cpuModel = probeNet();
  const gpuModel = mirrorOnGpu(probeNetLayers, cpuModel);
  const state = () => Promise.all([...gpuModel.stateDict()].map(async ([k, t]) => [k, [...await t.data()]]));
  const stateBefore = await state();
  const bytes = g.memory().bytesInUse;
  const c = await measureAll(cpuModel);
  const d = await measureAll(gpuModel, g);
  assert.equal(d.map((r) => r.probe), [...rg.analysis.PROBE_NAMES]);
  for (const [i, record] of c.entries()) agree(d[i], record, record.probe, TOLERANCE[record.probe]);
  assert.equal(await state(), stateBefore, "weights, running statistics and num_batches_tracked on the GPU");
  assert.is(g.memory().bytesInUse, bytes, "every GPU tensor a probe made is freed");
  cpuModel.dispose();
  gpuModel.dispose();
});

// Conv → BN → ReLU → pool → conv → BN → ReLU → pool → dropout → linear, with BatchNorm noise:
// the forward pass draws randomness (dropout, noise) and the statistics move, so a probe that
// forked no stream or froze no statistic would show. Not the CPU test's VGG: on lavapipe a
// VGG-11 run takes minutes.
function noisyNet(): rg.nn.Module {
  const { Sequential, Conv2d, BatchNorm2d, ReLU, MaxPool2d, GlobalAvgPool2d, Flatten, Dropout, Linear } = rg.nn;
  const model = new Sequential(
    new Conv2d(1, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
    new Conv2d(4, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(), new GlobalAvgPool2d(), new Flatten(),
    new Dropout(0.5), new Linear(8, 4),
  );
  rg.nn.addBatchNormNoise(model);
  return model;
}
const data = {
  train: rg.data.synthetic({ n: 32, channels: 1, height: 12, width: 12, classes: 4, seed: 3 }),
  test: rg.data.synthetic({ n: 16, channels: 1, height: 12, width: 12, classes: 4, seed: 4 }),
};

gpuTest("webgpu probes: a training run with every probe at every step ends with the same bits as one without", async () => {
  const previous = rg.getBackend().name;
  rg.setBackend("webgpu");
  try {
    const plain = await probedRun(noisyNet, false, data);
    const probed = await probedRun(noisyNet, true, data);
    assertSameRun(probed, plain, 4);
  } finally {
    rg.setBackend(previous);
  }
});

test.run();
