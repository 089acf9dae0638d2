/**
 * ONNX export: each model family is exported with rg.io.toOnnx, run in ONNX Runtime
 * (onnxruntime-web's WebAssembly build, a dev dependency of this test only) and its logits
 * compared with retrograd's own evaluation-mode forward on the same batch. BatchNorm
 * statistics and affine parameters, biases and SkipInit gains are first set to random values,
 * so that folding BatchNorm into the convolutions (the default) is really exercised; the
 * decoded graph must then hold no BatchNormalization node, and one per BatchNorm with
 * foldBatchNorm: false. Exporting leaves the model as it was. What cannot be exported is a
 * typed error naming it. `retrograd export --onnx` (the CLI of the runtime running the test)
 * writes the same model from saved weights, with the input normalisation in its metadata.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as ort from "onnxruntime-web";
import { fromBinary } from "@bufbuild/protobuf";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { ModelProtoSchema } from "../src/io/onnx_pb.ts";
import { assertClose } from "./helpers.ts";

ort.env.wasm.numThreads = 1;

/** Random BatchNorm statistics and affine parameters, biases and SkipInit gains (all start at 0 or 1). */
function randomise(model: rg.nn.Module): void {
  const small = (t: rg.Tensor) => t.copy_(rg.randn(t.shape, { std: 0.1 }));
  const around1 = (t: rg.Tensor) => t.copy_(rg.rand(t.shape, { low: 0.5, high: 1.5 }));
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof rg.nn.BatchNorm2d)) continue;
    around1(m.weight);
    around1(m.runningVar!);
    small(m.bias);
    small(m.runningMean!);
  }
  for (const [name, p] of model.namedParameters()) if (/(^|\.)(bias|skip_gain)$/.test(name)) small(p);
}

async function runOnnx(bytes: Uint8Array, x: rg.Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor("float32", x.dataSync(), [...x.shape]) });
  await session.release();
  return out.logits.data as Float32Array;
}

/** float32 agreement: 1e-4 relative, and 1e-4 of the logits' RMS absolute. */
function float32Tolerance(expected: Float32Array): { rtol: number; atol: number } {
  const rms = Math.sqrt(expected.reduce((s, v) => s + v * v, 0) / expected.length);
  return { rtol: 1e-4, atol: 1e-4 * rms };
}

const opTypes = (bytes: Uint8Array) => fromBinary(ModelProtoSchema, bytes).graph!.node.map((n) => n.opType);

const batchNorms = (model: rg.nn.Module) => [...model.namedModules()].filter(([, m]) => m instanceof rg.nn.BatchNorm2d).length;

/** A module of the user's whose op (a reshape that keeps the batch) export reads from the tape. */
class Regroup extends rg.nn.Module {
  forward(x: rg.Tensor): rg.Tensor {
    return rg.reshape(x, [x.shape[0], x.shape[1] * x.shape[2], x.shape[3]]);
  }
}

const CASES: [string, () => rg.nn.Module, number[]][] = [
  ["resnet20", () => rg.models.resnet20({ inChannels: 1 }), [1, 28, 28]],
  ["resnet18 (ImageNet stem: max-pool)", () => rg.models.resnet18({ numClasses: 10 }), [3, 32, 32]],
  ["se-resnet18", () => rg.models.seResnet18({ numClasses: 10 }), [3, 32, 32]],
  ["resnet18 without BatchNorm (SkipInit gains)", () => rg.models.resnet18NoNorm({ numClasses: 10 }), [3, 32, 32]],
  ["vgg11 with BatchNorm", () => rg.models.vgg11({ batchNorm: true }), [3, 32, 32]],
  ["mlp", () => rg.models.mlp({ inFeatures: 784, hidden: [64, 32], dropout: 0.3 }), [1, 28, 28]],
  ["layers composed with a module of the user's", () => new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 4, 3, { padding: 1 }), new Regroup(), new rg.nn.Flatten(), new rg.nn.Linear(4 * 8 * 8, 10),
  ), [1, 8, 8]],
];

for (const [name, make, inputShape] of CASES) {
  test(`${name}: ONNX Runtime's logits equal retrograd's evaluation forward`, async () => {
    rg.manualSeed(5);
    const model = make();
    randomise(model);
    const bytes = await rg.io.toOnnx(model, { inputShape });
    const ops = opTypes(bytes);
    assert.not.ok(ops.includes("BatchNormalization"), `every BatchNorm follows a conv, so all are folded: ${ops.join(" ")}`);
    const x = rg.randn([3, ...inputShape]);
    const expected = rg.noGrad(() => model.eval().forward(x)).dataSync();
    assertClose(await runOnnx(bytes, x), expected, name, float32Tolerance(expected));
  });
}

test("foldBatchNorm: false keeps one BatchNormalization per BatchNorm, with the same logits", async () => {
  rg.manualSeed(6);
  const model = rg.models.resnet20({ inChannels: 1 });
  randomise(model);
  const bytes = await rg.io.toOnnx(model, { inputShape: [1, 28, 28], foldBatchNorm: false });
  assert.is(opTypes(bytes).filter((op) => op === "BatchNormalization").length, batchNorms(model));
  const x = rg.randn([2, 1, 28, 28]);
  const expected = rg.noGrad(() => model.eval().forward(x)).dataSync();
  assertClose(await runOnnx(bytes, x), expected, "resnet20 unfolded", float32Tolerance(expected));
});

test("exporting leaves the model as it was: training mode, no hooks, the same state", async () => {
  rg.manualSeed(7);
  const model = rg.models.resnet20({ inChannels: 1 });
  randomise(model);
  const before = rg.io.writeSafetensors(model.stateDict());
  await rg.io.toOnnx(model, { inputShape: [1, 28, 28] });
  assert.equal(rg.io.writeSafetensors(model.stateDict()), before);
  assert.ok([...model.namedModules()].every(([, m]) => m.training && !m.hasHooks));
});

const isDeno = "Deno" in globalThis;
const cli = (...argv: string[]) => isDeno
  ? spawnSync("node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv], { encoding: "utf8" })
  : spawnSync("node", ["dist/cli.mjs", ...argv], { encoding: "utf8" });

test("retrograd export --onnx: saved weights to ONNX, the normalisation in its metadata", async () => {
  rg.manualSeed(8);
  const model = rg.models.resnet20({ inChannels: 1 });
  randomise(model);
  const dir = mkdtempSync(join(tmpdir(), "retrograd-onnx-"));
  writeFileSync(join(dir, "w.safetensors"), rg.io.writeSafetensors(model.stateDict()));
  const r = cli("export", "--onnx", join(dir, "m.onnx"), "--weights", join(dir, "w.safetensors"), "--model", "resnet20");
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /input "input" \[N, 1, 28, 28\].*mean \[0\.286\] and std \[0\.353\]; output "logits" \[N, 10\]/);
  const bytes = new Uint8Array(readFileSync(join(dir, "m.onnx")));
  const meta = Object.fromEntries(fromBinary(ModelProtoSchema, bytes).metadataProps.map((p) => [p.key, p.value]));
  assert.equal(meta, { model: "resnet20", dataset: "fashion-mnist", mean: "[0.286]", std: "[0.353]" });
  const x = rg.randn([2, 1, 28, 28]);
  const expected = rg.noGrad(() => model.eval().forward(x)).dataSync();
  assertClose(await runOnnx(bytes, x), expected, "exported by the CLI", float32Tolerance(expected));

  const missing = cli("export", "--weights", join(dir, "w.safetensors"));
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /export needs --onnx FILE/);
});

class Doubler extends rg.nn.Module {
  forward(x: rg.Tensor): rg.Tensor {
    return rg.scale(x, 2);
  }
}

test("what cannot be exported is a typed error that names it", async () => {
  const seq = new rg.nn.Sequential(new rg.nn.Linear(4, 4), new Doubler());
  await assertRejects(() => rg.io.toOnnx(seq, { inputShape: [4] }), rg.io.OnnxExportError, /the op "scale"/);
  const bn = new rg.nn.Sequential(new rg.nn.Conv2d(1, 2, 3), new rg.nn.BatchNorm2d(2, { trackRunningStats: false }));
  await assertRejects(() => rg.io.toOnnx(bn, { inputShape: [1, 5, 5] }), rg.io.OnnxExportError, /1: BatchNorm2d without running statistics/);
  await assertRejects(() => rg.io.toOnnx(seq, {} as rg.io.OnnxOptions), rg.ValueError, /inputShape/);
});

async function assertRejects(fn: () => Promise<unknown>, type: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  try {
    await fn();
  } catch (error) {
    assert.instance(error, type);
    assert.match((error as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${type.name}`);
}

test.run();
