/**
 * The fused BatchNorm → (+ residual) → ReLU (ops/norm.ts batchNormRelu, and the ResNets that
 * use it) against the separate ops it replaces, on the CPU backend: every output, gradient
 * (input, γ, β, residual) and running statistic must be the same bytes, not merely close.
 * In evaluation mode too (one pass forward, the running statistics' affine map and the epilogue).
 * The models run unfused while a hook sits on a BatchNorm or on the stem's ReLU, so the same
 * ResNets with no-op hooks give the reference, and the hooks must still see their modules.
 * The fused backward writes dx over the output gradient when it owns that buffer alone; a
 * shared one must come out untouched.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { recordSteps } from "./helpers.ts";

function bytesEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const bad = a.findIndex((v, i) => v !== e[i]);
  assert.ok(bad < 0, `${what}: element ${bad} is ${actual[bad]}, unfused ${expected[bad]}`);
}

/** Both runs of one case: named values, in the same order. */
type Run = [string, Float32Array][];

function sameRuns(fused: Run, unfused: Run, label: string): void {
  assert.equal(fused.map(([k]) => k), unfused.map(([k]) => k), `${label}: the same values were collected`);
  fused.forEach(([name, v], i) => bytesEqual(v, unfused[i][1], `${label} ${name}`));
}

const SHAPES: [string, number[]][] = [
  ["[4, 16, 32, 32] (whole SIMD planes)", [4, 16, 32, 32]],
  ["[3, 5, 7, 7] (odd planes: scalar tails)", [3, 5, 7, 7]],
  ["[6, 3, 2] (rank 3)", [6, 3, 2]],
  ["[9, 4] (rank 2: one value per plane)", [9, 4]],
];

for (const [label, shape] of SHAPES) {
  for (const [residualGrad, training] of [null, true, false].flatMap((r) => [[r, true], [r, false]] as const)) {
    const residualLabel = residualGrad === null ? "no residual" : `residual${residualGrad ? "" : " without grad"}`;
    const what = `${label}, ${residualLabel}, ${training ? "training" : "evaluation"}`;
    test(`batchNormRelu = relu(residual + batchNorm(x)) bit for bit, forward and backward: ${what}`, () => {
      const C = shape[1];
      const size = shape.reduce((a, b) => a * b, 1);
      const run = (fused: boolean): Run => {
        rg.manualSeed(11);
        const x = rg.randn(shape).requireGrad();
        const gamma = rg.add(rg.randn([C]), rg.tensor([1])).requireGrad();
        const beta = rg.randn([C]).requireGrad();
        const residual = residualGrad === null ? null : rg.randn(shape).requireGrad(residualGrad);
        const runningMean = rg.randn([C]);
        const runningVar = rg.add(rg.scale(rg.randn([C]), 0.1), rg.tensor([1]));
        const dy = rg.randn(shape);
        const opts = { training, momentum: 0.3, eps: 1e-4 };
        let y: rg.Tensor;
        if (fused) {
          y = rg.batchNormRelu(x, gamma, beta, runningMean, runningVar, opts, residual);
        } else {
          const normalised = rg.batchNorm(x, gamma, beta, runningMean, runningVar, opts);
          y = rg.relu(residual ? rg.add(residual, normalised) : normalised);
        }
        y.backward(dy);
        const out: Run = [
          ["y", y.dataSync()], ["running_mean", runningMean.dataSync()], ["running_var", runningVar.dataSync()],
          ["dx", x.grad!.dataSync()], ["dgamma", gamma.grad!.dataSync()], ["dbeta", beta.grad!.dataSync()],
        ];
        if (residual?.requiresGrad) out.push(["dresidual", residual.grad!.dataSync()]);
        else if (residual) assert.is(residual.grad, null, "no gradient for a residual that does not require one");
        return out;
      };
      const fused = run(true);
      const zeros = fused[0][1].filter((v) => v === 0).length;
      assert.ok(zeros > 0 && zeros < size, `the ReLU cuts some outputs, not all (${zeros} of ${size})`);
      sameRuns(fused, run(false), what);
    });
  }
}

test("batchNormRelu writes dx over its output gradient only when nothing else shares that buffer", () => {
  // add() hands the same gradient storage to both addends: w's gradient must come out intact.
  const run = (fused: boolean) => {
    rg.manualSeed(13);
    const x = rg.randn([4, 3, 5, 5]).requireGrad();
    const [gamma, beta] = [rg.randn([3]).requireGrad(), rg.randn([3]).requireGrad()];
    const w = rg.randn([4, 3, 5, 5]).requireGrad();
    const dz = rg.randn([4, 3, 5, 5]);
    const opts = { training: true };
    const y = fused ? rg.batchNormRelu(x, gamma, beta, null, null, opts) : rg.relu(rg.batchNorm(x, gamma, beta, null, null, opts));
    rg.add(y, w).backward(dz);
    bytesEqual(w.grad!.dataSync(), dz.dataSync(), "the other addend's gradient");
    return [["dx", x.grad!.dataSync()], ["dgamma", gamma.grad!.dataSync()], ["dbeta", beta.grad!.dataSync()]] as Run;
  };
  sameRuns(run(true), run(false), "shared output gradient");
});

test("a backend without the fast paths (fused BatchNorm→ReLU, fused SGD) composes the same bits for ResNet-20 training", () => {
  // The CPU backend with its optional kernels hidden: what a new backend that implements only
  // the required methods gets.
  const cpu = rg.getBackend("cpu");
  const plain = Object.create(cpu, {
    name: { value: "cpu-required-only" },
    batchNormReluTrainForward: { value: undefined },
    batchNormReluBackward: { value: undefined },
    sgdStep: { value: undefined },
  }) as rg.Backend;
  rg.registerBackend(plain);
  const run = (backend: string) => {
    rg.setBackend(backend);
    rg.manualSeed(12);
    const model = rg.models.resnet20({ inChannels: 1, numClasses: 4 });
    const x = rg.randn([3, 1, 8, 8]);
    return recordSteps(model, x, [0, 1, 3]);
  };
  try {
    sameRuns(run("cpu-required-only"), run("cpu"), "composed vs fused");
  } finally {
    rg.setBackend("cpu");
  }
});

test("batchNormRelu rejects a residual of another shape", () => {
  const x = rg.randn([2, 3, 4, 4]);
  assert.throws(() => rg.batchNormRelu(x, rg.randn([3]), rg.randn([3]), null, null, { training: true }, rg.randn([2, 3, 4, 1])),
    (e: unknown) => e instanceof rg.ShapeError && /residual \[2, 3, 4, 1\] does not match input \[2, 3, 4, 4\]/.test((e as Error).message));
});

/** Two SGD steps of `make()` on a seeded batch: logits, loss, every gradient, then the state dict. */
function trainSteps(make: () => rg.nn.Module, hook: boolean, inShape: number[]): Run {
  rg.manualSeed(3);
  const model = make();
  let calls = 0;
  if (hook) {
    for (const [, m] of model.namedModules()) if (m instanceof rg.nn.BatchNorm2d) m.registerForwardHook(() => void calls++);
  }
  const norms = [...model.namedModules()].filter(([, m]) => m instanceof rg.nn.BatchNorm2d).length;
  const x = rg.randn(inShape);
  const out = recordSteps(model, x, Array.from({ length: inShape[0] }, (_, i) => (i * 3) % 10));
  if (hook) assert.is(calls, 2 * norms, "every BatchNorm's forward hook ran once per step");
  model.dispose();
  x.dispose();
  return out;
}

const MODELS: [string, () => rg.nn.Module, number[]][] = [
  ["ResNet-20 (basic blocks, projection shortcuts)", () => rg.models.resnet20({ numClasses: 10 }), [8, 3, 16, 16]],
  ["a bottleneck SE-ResNet with the ImageNet stem (SE keeps the last BatchNorm unfused)", () =>
    new rg.models.ResNet({ block: "bottleneck", blocksPerStage: [1, 1], widths: [4, 8], se: true, numClasses: 10 }),
  [4, 3, 32, 32]],
  ["a bottleneck ResNet", () =>
    new rg.models.ResNet({ block: "bottleneck", blocksPerStage: [2, 1], widths: [4, 8], stem: "cifar", numClasses: 10 }),
  [4, 3, 12, 12]],
];

for (const [label, make, inShape] of MODELS) {
  test(`${label}: two fused training steps are bitwise the unfused ones (hooks on every BatchNorm)`, () => {
    sameRuns(trainSteps(make, false, inShape), trainSteps(make, true, inShape), label);
  });
}

test("hooks on a BatchNorm and the stem's ReLU see their own modules' values; the numbers do not change", () => {
  const run = (hooked: boolean) => {
    rg.manualSeed(5);
    const model = rg.models.resnet20({ numClasses: 10 });
    const seen: Record<string, number[]> = {};
    if (hooked) {
      const modules = new Map(model.namedModules());
      const bn = modules.get("layer1.0.bn2")!, stemBn = modules.get("bn1")!, stemRelu = modules.get("relu")!;
      bn.registerForwardHook((_m, input, output) => void (seen.bnOut = [...output.dataSync()], seen.bnIn = [...input.dataSync()]));
      bn.registerBackwardHook((_m, _gin, gout) => void (seen.bnGradOut = [...gout.dataSync()]));
      stemRelu.registerForwardHook((_m, input) => void (seen.reluIn = [...input.dataSync()]));
      stemBn.registerForwardHook((_m, _input, output) => void (seen.stemBnOut = [...output.dataSync()]));
    }
    const x = rg.randn([4, 3, 8, 8]);
    const loss = rg.crossEntropy(model.forward(x), [1, 2, 3, 4]);
    loss.backward();
    const grads = [...model.namedParameters()].map(([, p]) => p.grad!.dataSync());
    return { seen, grads, loss: loss.item() };
  };
  const plain = run(false), hooked = run(true);
  assert.is(hooked.loss, plain.loss);
  plain.grads.forEach((g, i) => bytesEqual(hooked.grads[i], g, `gradient ${i}`));
  const { bnOut, bnIn, bnGradOut, reluIn, stemBnOut } = hooked.seen;
  assert.ok(bnOut && bnIn && bnGradOut && reluIn && stemBnOut, "every hook ran");
  assert.is(bnOut.length, 4 * 16 * 64);
  assert.ok(bnOut.some((v) => v < 0), "the BatchNorm hook sees the normalised values, before the ReLU");
  assert.equal(reluIn, stemBnOut, "the stem's ReLU hook gets bn1's output");
  assert.ok(bnGradOut.some((v) => v !== 0), "the backward hook gets the gradient at bn2's output");
});

test.run();
