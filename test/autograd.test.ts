/**
 * The tape: accumulation, hooks (tensor and module), detach and noGrad, graph freeing, and
 * memory accounting (a step frees every intermediate it made).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";

test("gradients accumulate across uses and across backward calls", () => {
  const x = rg.tensor([1, 2, 3]).requireGrad();
  const y = rg.sum(rg.add(rg.mul(x, x), x)); // Σ x² + x → 2x + 1
  y.backward();
  assertClose(x.grad!, [3, 5, 7], "first backward");
  rg.sum(rg.scale(x, 2)).backward();
  assertClose(x.grad!, [5, 7, 9], "accumulated");
});

test("a tensor hook can replace the gradient flowing on (what PowerGrad-style research needs)", () => {
  const x = rg.tensor([1, -2, 3]).requireGrad();
  const h = rg.scale(x, 2);
  const seen: number[][] = [];
  h.registerHook((g) => {
    seen.push([...g.dataSync()]);
    return rg.scale(g, 10);
  });
  rg.sum(rg.mul(h, h)).backward(); // dL/dh = 2h = [4, -8, 12]
  assert.equal(seen, [[4, -8, 12]]);
  assertClose(x.grad!, [80, -160, 240], "x.grad after the hook ×10 and the chain ×2");
});

test("leaf hooks run once on the summed gradient, before .grad", () => {
  const w = rg.tensor([2]).requireGrad();
  let calls = 0;
  w.registerHook((g) => {
    calls++;
    assertClose(g, [3], "summed leaf gradient");
  });
  rg.sum(rg.add(rg.scale(w, 1), rg.scale(w, 2))).backward();
  assert.is(calls, 1);
  assertClose(w.grad!, [3], "w.grad");
});

test("module backward hooks see grad output and grad input, and may replace grad input", () => {
  rg.manualSeed(1);
  const model = new rg.nn.Sequential(new rg.nn.Linear(3, 4), new rg.nn.ReLU(), new rg.nn.Linear(4, 2));
  const x = rg.randn([5, 3]).requireGrad();
  const relu = model.layers[1];
  const shapes: string[] = [];
  relu.registerBackwardHook((_m, gradIn, gradOut) => {
    shapes.push(`${gradIn!.shape}|${gradOut.shape}`);
    return rg.scale(gradIn!, 0); // cut the gradient below the ReLU
  });
  rg.sum(model.forward(x)).backward();
  assert.equal(shapes, ["5,4|5,4"]);
  assertClose(x.grad!, new Float32Array(15), "no gradient passes a zeroed hook");
  const lastLayer = model.layers[2] as rg.nn.Linear;
  assert.ok(lastLayer.weight.grad!.dataSync().some((v) => v !== 0), "layers above the hook still get gradients");
});

test("forward hooks see the output and may replace it", () => {
  const relu = new rg.nn.ReLU();
  relu.registerForwardHook((_m, _input, output) => rg.scale(output, 2));
  assertClose(relu.forward(rg.tensor([-1, 3])), [0, 6], "hooked output");
});

test("detach and noGrad stop the tape", () => {
  const x = rg.tensor([1, 2]).requireGrad();
  assert.is(rg.scale(x, 2).detach().requiresGrad, false);
  assert.is(rg.noGrad(() => rg.scale(x, 2)).requiresGrad, false);
  assert.is(rg.scale(x, 2).requiresGrad, true);
});

test("a second backward through a freed graph is a clear error", () => {
  const x = rg.tensor([1, 2]).requireGrad();
  const y = rg.sum(rg.mul(x, x));
  y.backward();
  assert.throws(() => y.backward(), (e: Error) => e instanceof rg.DisposedError && /already freed/.test(e.message));
});

test("using a disposed tensor is a clear error", () => {
  const t = rg.tensor([1]);
  t.dispose();
  assert.throws(() => t.dataSync(), (e: Error) => e instanceof rg.DisposedError);
});

test("tidy + backward + step: bytes in use return to the same value every step", () => {
  rg.manualSeed(2);
  const model = new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 4, 3, { padding: 1 }), new rg.nn.BatchNorm2d(4), new rg.nn.ReLU(),
    new rg.nn.MaxPool2d(2), new rg.nn.Flatten(), new rg.nn.Linear(4 * 4 * 4, 3),
  );
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const x = rg.randn([6, 1, 8, 8]);
  const labels = [0, 1, 2, 0, 1, 2];
  const used: number[] = [];
  for (let step = 0; step < 5; step++) {
    rg.tidy(() => {
      opt.zeroGrad();
      rg.crossEntropy(model.forward(x), labels).backward();
      opt.step();
    });
    used.push(rg.memory().bytesInUse);
  }
  // Step 0 creates gradients and momentum buffers; from then on nothing may grow.
  assert.equal(new Set(used.slice(1)).size, 1, `bytes in use per step: ${used.join(", ")}`);
});

test("an evaluation graph that is never backpropagated is freed with its tensors", () => {
  const w = rg.randn([8, 8]).requireGrad();
  const before = rg.memory().bytesInUse;
  rg.tidy(() => {
    rg.relu(rg.matmul(rg.relu(rg.matmul(rg.randn([4, 8]), w)), w));
  });
  assert.is(rg.memory().bytesInUse, before);
});

test("shape errors name the op and both shapes", () => {
  assert.throws(() => rg.matmul(rg.zeros([2, 3]), rg.zeros([4, 5])), (e: Error) =>
    e instanceof rg.ShapeError && e.message.includes("matmul") && e.message.includes("[2, 3]") && e.message.includes("[4, 5]"));
  assert.throws(() => rg.add(rg.zeros([2, 3]), rg.zeros([4])), (e: Error) =>
    e instanceof rg.ShapeError && /add: shapes \[2, 3\] and \[4\]/.test(e.message));
  assert.throws(() => rg.conv2d(rg.zeros([1, 3, 8, 8]), rg.zeros([4, 2, 3, 3])), (e: Error) =>
    e instanceof rg.ShapeError && e.message.includes("conv2d") && e.message.includes("[1, 3, 8, 8]") && e.message.includes("[4, 2, 3, 3]"));
  assert.throws(() => rg.crossEntropy(rg.zeros([2, 3]), [0, 3]), (e: Error) =>
    e instanceof rg.ValueError && /label 1 is 3/.test(e.message));
  assert.throws(() => rg.tensor([1, 2, 3], [2, 2]), (e: Error) => e instanceof rg.ShapeError);
});

test("a straight-through module hook (returning gradOutput) and chained replacements work", () => {
  const relu = new rg.nn.ReLU();
  relu.registerBackwardHook((_m, _gin, gout) => gout); // pass the gradient through the ReLU unchanged
  relu.registerBackwardHook((_m, gin) => rg.scale(gin!, 2)); // a second hook builds on the first
  const x = rg.tensor([-1, 2, -3]).requireGrad();
  const before = rg.memory().bytesInUse;
  rg.tidy(() => rg.sum(relu.forward(x)).backward());
  assertClose(x.grad!, [2, 2, 2], "straight-through, doubled");
  x.grad!.dispose();
  x.grad = null;
  assert.is(rg.memory().bytesInUse, before, "gradOutput copies and hook replacements are freed");
});

test("tidy frees what it made when its function throws", () => {
  const before = rg.memory().bytesInUse;
  assert.throws(() => rg.tidy(() => {
    rg.matmul(rg.randn([16, 16]), rg.randn([16, 16]));
    throw new Error("step failed");
  }), /step failed/);
  assert.is(rg.memory().bytesInUse, before);
});

test.run();
