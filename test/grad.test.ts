/**
 * Gradients on demand: rg.grad (torch.autograd.grad) equals backward()'s .grad bit for bit and
 * touches no .grad, reaches intermediate tensors, visits only the part of the graph that leads
 * to its inputs; retainGraph; enableGrad inside noGrad; valueAndGrad; customGrad (a backward rule
 * that disagrees with the forward, composing with tensor and module hooks); `using`.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { assertClose } from "./helpers.ts";

function bitsEqual(a: rg.Tensor, b: rg.Tensor, what: string): void {
  const x = a.dataSync(), y = b.dataSync();
  assert.is(x.length, y.length, `${what}: sizes`);
  for (let i = 0; i < x.length; i++) {
    if (!Object.is(x[i], y[i])) assert.unreachable(`${what}: element ${i} is ${x[i]} by grad(), ${y[i]} by backward()`);
  }
}

test("rg.grad of ResNet-20's loss equals backward()'s .grad for every parameter, bitwise, and leaves .grad alone", () => {
  rg.manualSeed(4);
  const model = rg.models.resnet20({ inChannels: 1, numClasses: 10 });
  const x = rg.randn([6, 1, 12, 12]);
  const labels = [0, 1, 2, 3, 4, 5];
  const params = model.parameters();
  const loss = rg.crossEntropy(model.forward(x), labels);
  const grads = rg.grad(loss, params, { retainGraph: true });
  assert.ok(params.every((p) => p.grad === null), "grad() wrote no .grad");
  loss.backward();
  params.forEach((p, i) => bitsEqual(grads[i]!, p.grad!, `parameter ${i} [${p.shape}]`));
  for (const g of grads) g!.dispose();
  model.dispose();
});

test("rg.grad reaches an intermediate tensor and runs hooks on the way", () => {
  const w = rg.tensor([1, -2, 3]).requireGrad();
  const h = rg.scale(w, 2);
  h.registerHook((g) => rg.scale(g, 10));
  const y = rg.sum(rg.mul(h, h)); // dy/dh = 2h = [4, -8, 12], ×10 by the hook
  const [dh, dw] = rg.grad(y, [h, w]);
  assertClose(dh!, [40, -80, 120], "dy/dh after the hook");
  assertClose(dw!, [80, -160, 240], "dy/dw through the hooked h");
  assert.is(w.grad, null);
});

test("rg.grad visits only the nodes that lead to its inputs", () => {
  const a = rg.tensor([1, 2]).requireGrad();
  const b = rg.tensor([3, 4]).requireGrad();
  const early = rg.scale(a, 3);
  let ran = 0;
  early.registerHook(() => void ran++);
  const y = rg.sum(rg.add(rg.mul(early, early), b));
  const [db] = rg.grad(y, [b]);
  assertClose(db!, [1, 1], "dy/db");
  assert.is(ran, 0, "the branch through a was not backpropagated");
});

test("rg.grad: gradOutputs for several outputs, allowUnused, and clear errors", () => {
  const x = rg.tensor([1, 2, 3]).requireGrad();
  const unused = rg.tensor([5]).requireGrad();
  const y1 = rg.scale(x, 2), y2 = rg.mul(x, x);
  const [dx, du] = rg.grad([y1, y2], [x, unused], { gradOutputs: [rg.tensor([1, 1, 1]), rg.tensor([1, 0, 2])], allowUnused: true });
  assertClose(dx!, [2 + 2, 2, 2 + 12], "Σ gradOutputs · ∂y/∂x");
  assert.is(du, null);
  const z = rg.sum(rg.scale(x, 2));
  assert.throws(() => rg.grad(z, [unused]), (e: Error) => e instanceof rg.ValueError && /input 0 .* not reached/.test(e.message));
  assert.throws(() => rg.grad(rg.scale(x, 2), [x]), (e: Error) => e instanceof rg.ShapeError && /must be given/.test(e.message));
  assert.throws(() => rg.grad(rg.sum(x), [rg.tensor([1])]), (e: Error) => e instanceof rg.ValueError && /does not require grad/.test(e.message));
});

test("retainGraph lets a graph be backpropagated twice; without it the second pass is a clear error", () => {
  const x = rg.tensor([1, 2]).requireGrad();
  const y = rg.sum(rg.mul(x, x));
  const [g1] = rg.grad(y, [x], { retainGraph: true });
  const [g2] = rg.grad(y, [x]);
  bitsEqual(g1!, g2!, "the same gradient twice");
  assert.throws(() => rg.grad(y, [x]), (e: Error) => e instanceof rg.DisposedError && /retainGraph/.test(e.message));
});

test("enableGrad records inside noGrad", () => {
  const x = rg.tensor([1, 2]).requireGrad();
  rg.noGrad(() => {
    assert.is(rg.scale(x, 2).requiresGrad, false);
    const y = rg.enableGrad(() => rg.sum(rg.mul(x, x)));
    assert.is(y.requiresGrad, true);
    assertClose(rg.enableGrad(() => rg.grad(y, [x]))[0]!, [2, 4], "d Σx² / dx inside noGrad");
  });
});

test("valueAndGrad: value and gradient of a function of a list, without touching the arguments", () => {
  const w = rg.tensor([0.5, -1.5]);
  const v = rg.tensor([2]).requireGrad();
  const f = rg.valueAndGrad((ps: readonly rg.Tensor[]) => rg.sum(rg.mul(rg.mul(ps[0], ps[0]), ps[1])));
  const { value, grads } = f([w, v]);
  assertClose(value, [5], "value: (0.25 + 2.25) · 2");
  assertClose(grads[0], [2, -6], "∂/∂w = 2wv");
  assertClose(grads[1], [2.5], "∂/∂v = Σw²");
  assert.is(w.requiresGrad, false, "the arguments are read through fresh leaves");
  assert.is(v.grad, null, "no .grad written");
  assert.is(value.requiresGrad, false, "the value is outside the graph");
});

test("customGrad: a backward rule that disagrees with the forward, seen by tensor hooks", () => {
  // forward: 2x; backward: 3·dy (deliberately not the derivative)
  const twiceWithTripleGrad = rg.customGrad({
    name: "twiceWithTripleGrad",
    forward: (x) => ({ output: rg.scale(x, 2) }),
    backward: (dy) => [rg.scale(dy, 3)],
  });
  const x = rg.tensor([1, -1]).requireGrad();
  const y = twiceWithTripleGrad(x);
  assertClose(y, [2, -2], "forward");
  const seen: number[][] = [];
  y.registerHook((g) => void seen.push([...g.dataSync()]));
  rg.sum(rg.mul(y, y)).backward(); // dL/dy = 2y = [4, -4]
  assert.equal(seen, [[4, -4]], "the hook on the custom op's output");
  assertClose(x.grad!, [12, -12], "x.grad = 3 · dL/dy");
});

test("customGrad: saved tensors, an identity forward, no recording under noGrad, errors", () => {
  const straightThrough = rg.customGrad({
    forward: (x) => ({ output: x, saved: [x] }),
    backward: (dy, [x]) => [rg.mul(dy, x)],
  });
  const x = rg.tensor([2, 3]).requireGrad();
  const y = straightThrough(x);
  assert.ok(y !== x, "the output is a handle of its own");
  rg.sum(y).backward();
  assertClose(x.grad!, [2, 3], "dy · saved x");
  assert.is(rg.noGrad(() => straightThrough(x)).requiresGrad, false);
  const wrong = rg.customGrad({ name: "wrong", forward: (a) => ({ output: rg.scale(a, 1) }), backward: (dy) => [dy, dy] });
  assert.throws(() => rg.sum(wrong(x)).backward(), (e: Error) => e instanceof rg.ValueError && /wrong: backward returned 2 gradients for 1 inputs/.test(e.message));
});

test("customGrad composes with module backward hooks", () => {
  const doubleGrad = rg.customGrad({ forward: (x) => ({ output: rg.scale(x, 1) }), backward: (dy) => [rg.scale(dy, 2)] });
  class Custom extends rg.nn.Module {
    forward(x: rg.Tensor) {
      return doubleGrad(x);
    }
  }
  const m = new Custom();
  const shapes: string[] = [];
  m.registerBackwardHook((_m, gin, gout) => {
    shapes.push(`${[...gin!.dataSync()]}|${[...gout.dataSync()]}`);
  });
  const x = rg.tensor([1, 1]).requireGrad();
  rg.sum(m.forward(x)).backward();
  assert.equal(shapes, ["2,2|1,1"]);
});

test("PowerGrad: the reference through customGrad equals the fused cross-entropy kernel within float32 rounding", () => {
  rg.manualSeed(13);
  const logits = rg.scale(rg.randn([7, 10]), 4);
  const labels = [0, 3, 9, 2, 2, 5, 7];
  for (const alpha of [1, 0.5, 0.25, 0.1]) {
    for (const opts of [{}, { labelSmoothing: 0.1 }, { reduction: "sum" as const }]) {
      const z1 = logits.detach().requireGrad(), z2 = logits.detach().requireGrad();
      const fused = rg.crossEntropy(z1, labels, { ...opts, powerGrad: alpha });
      const reference = rg.powerGradCrossEntropy(z2, labels, alpha, opts);
      assert.equal([...fused.dataSync()], [...reference.dataSync()], "the same forward (ordinary cross-entropy)");
      rg.mul(fused, 3).backward();
      rg.mul(reference, 3).backward();
      assertClose(z2.grad!, z1.grad!, `α = ${alpha} ${JSON.stringify(opts)}`, { rtol: 1e-5, atol: 1e-7 });
    }
  }
  // and not merely the ordinary gradient: α < 1 must differ from α = 1
  const a = logits.detach().requireGrad(), b = logits.detach().requireGrad();
  rg.powerGradCrossEntropy(a, labels, 0.25).backward();
  rg.crossEntropy(b, labels).backward();
  assert.ok(a.grad!.dataSync().some((v, i) => Math.abs(v - b.grad!.dataSync()[i]) > 1e-3));
});

test("`using` disposes a tensor at the end of its block", () => {
  let outer: rg.Tensor;
  {
    using t = rg.zeros([3]);
    outer = t;
    assert.is(t.isDisposed, false);
  }
  assert.is(outer.isDisposed, true);
});

test.run();
