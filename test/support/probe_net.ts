/**
 * The probe fixture's network and step (test/fixtures/gen_fixtures.py gen_probes,
 * probes.safetensors): conv → BN → ReLU → conv (stride 2) → BN → ReLU → global pool → linear,
 * one batch of 4 in training mode, W^{t+1} = W^t − lr·∇L. Shared by the probes' PyTorch test
 * (test/probes.test.ts, CPU) and their WebGPU parity test (test/webgpu_probes.test.ts), which
 * builds the same network on the GPU and needs the step's tensors there.
 */
import * as rg from "../../src/mod.ts";
import { loadFixture } from "../helpers.ts";

export const probeFixture = loadFixture("probes.safetensors");
/** The network's parameter names, in order. */
export const probeParamNames = probeFixture.meta("names") as unknown as string[];
export const probeLr = Number(probeFixture.meta("lr"));

/** The network's layers, freshly initialised on the current backend. */
export function probeNetLayers(): rg.nn.Module {
  const { Sequential, Conv2d, BatchNorm2d, ReLU, GlobalAvgPool2d, Flatten, Linear } = rg.nn;
  return new Sequential(
    new Conv2d(1, 3, 3, { padding: 1 }), new BatchNorm2d(3), new ReLU(),
    new Conv2d(3, 4, 3, { stride: 2, padding: 1 }), new BatchNorm2d(4), new ReLU(),
    new GlobalAvgPool2d(), new Flatten(), new Linear(4, 3),
  );
}

/** The network with the fixture's weights (on the CPU). */
export function probeNet(): rg.nn.Module {
  const model = probeNetLayers();
  const fx = probeFixture;
  model.loadStateDict(new Map(fx.keys().filter((k) => k.startsWith("model.")).map((k) => [k.slice(6), fx.get(k)])));
  return model;
}

/** The fixture's step: W^t the model's weights, W^{t+1} and the batch the fixture's, on `backend` (default the CPU). */
export function probeFixtureStep(model: rg.nn.Module, backend?: rg.Backend): rg.analysis.ProbedStep {
  const fx = probeFixture;
  const on = (t: rg.Tensor) => (backend ? rg.tensor(t.dataSync(), t.shape, backend) : t);
  return {
    step: 1, epoch: 1, lr: probeLr, model,
    batch: { x: on(fx.get("x")), labels: Int32Array.from(fx.get("labels").dataSync()), randomState: { seed: 7, counter: 0 } },
    loss: (logits, labels) => rg.crossEntropy(logits, labels),
    before: rg.analysis.snapshotParameters(model),
    after: new Map(probeParamNames.map((n) => [n, on(fx.get(`after.${n}`))])),
  };
}
