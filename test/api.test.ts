/**
 * The public API as the README shows it: load a PyTorch state dict, forward, PowerGrad loss,
 * backward, a Nesterov SGD step, and bytes PyTorch can load; plus the errors a user meets
 * when a state dict does not fit.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as rg from "../src/mod.ts";

test("the README example runs: PyTorch weights in, one PowerGrad step, safetensors out", () => {
  const bytes = new Uint8Array(readFileSync("test/fixtures/resnet20.safetensors"));
  const pytorch = rg.io.readSafetensors(bytes);
  const stateDict = new Map([...pytorch].filter(([k]) => k.startsWith("model.")).map(([k, t]) => [k.slice(6), t]));

  const model = rg.models.resnet20({ numClasses: 10, inChannels: 3 });
  model.loadStateDict(stateDict);
  rg.manualSeed(0);
  const x = rg.randn([8, 3, 32, 32]);
  const labels = new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]);
  const loss = rg.nn.crossEntropy(model.forward(x), labels, { powerGrad: 0.25 });
  loss.backward();
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  opt.step();
  const out = rg.io.writeSafetensors(model.stateDict());

  const back = rg.io.readSafetensors(out);
  assert.equal([...back.keys()].sort(), [...stateDict.keys()].sort());
  assert.is(back.get("bn1.num_batches_tracked")!.dtype, "int64");
  assert.is(back.get("bn1.num_batches_tracked")!.item(), 1);
  const before = stateDict.get("fc.weight")!.dataSync();
  const after = back.get("fc.weight")!.dataSync();
  assert.ok(after.some((v, i) => v !== before[i]), "the step moved the weights");
});

test("loadStateDict lists missing, unexpected and mis-shaped keys in one error", () => {
  const model = new rg.nn.Sequential(new rg.nn.Linear(4, 3), new rg.nn.ReLU(), new rg.nn.Linear(3, 2));
  const sd = new Map(model.stateDict());
  sd.delete("2.bias");
  sd.set("3.weight", rg.zeros([1]));
  sd.set("0.weight", rg.zeros([3, 5]));
  try {
    model.loadStateDict(sd);
    assert.unreachable("a bad state dict must be rejected");
  } catch (e) {
    assert.instance(e, rg.StateDictError);
    const err = e as rg.StateDictError;
    assert.equal(err.missing, ["2.bias"]);
    assert.equal(err.unexpected, ["3.weight"]);
    assert.equal(err.mismatched, ["0.weight: expected [3, 4], got [3, 5]"]);
    assert.match(err.message, "missing keys: 2.bias");
    assert.match(err.message, "unexpected keys: 3.weight");
  }
  // Non-strict loading accepts a partial dict but still refuses a wrong shape.
  const partial = new Map([["0.bias", rg.tensor([1, 2, 3])]]);
  model.loadStateDict(partial, { strict: false });
  assert.equal([...(model.layers[0] as rg.nn.Linear).bias!.dataSync()], [1, 2, 3]);
  assert.throws(() => model.loadStateDict(new Map([["0.bias", rg.zeros([4])]]), { strict: false }), /0\.bias: expected \[3\], got \[4\]/);
  // A transposed weight has the right size but the wrong layout: refused too.
  assert.throws(() => model.loadStateDict(new Map([["0.weight", rg.zeros([4, 3])]]), { strict: false }),
    /0\.weight: expected \[3, 4\], got \[4, 3\]/);
});

test("a truncated safetensors file is rejected with an error naming the file", () => {
  const bytes = new Uint8Array(readFileSync("test/fixtures/optim.safetensors"));
  assert.throws(() => rg.io.readSafetensors(bytes.subarray(0, bytes.length - 10), "optim.safetensors"),
    (e: Error) => e instanceof rg.SafetensorsError && /optim\.safetensors/.test(e.message) && /truncated/.test(e.message));
});

test.run();
