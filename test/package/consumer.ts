// A TypeScript user of the installed npm package: test/package.test.ts type-checks this file
// against the shipped declarations and runs it under Node, and runs it under Deno with
// "retrograd" mapped to `npm:retrograd` (from the local node_modules). One training step of a
// small model and its export to ONNX; prints the losses before and after and the ONNX size as JSON. (Not part of the repository's own
// type-check: "retrograd" resolves only where the tarball is installed.)
import * as rg from "retrograd";

rg.manualSeed(7);
const model: rg.nn.Module = rg.models.mlp({ inFeatures: 16, hidden: [32], numClasses: 4 });
const opt = new rg.optim.SGD(model.parameters(), { lr: 0.5 });
const x: rg.Tensor = rg.randn([8, 16]);
const labels = rg.tensor([0, 1, 2, 3, 0, 1, 2, 3], [8]);
const lossOf = (): number => rg.noGrad(() => rg.crossEntropy(model.forward(x), labels).item());
const before = lossOf();
const loss = rg.crossEntropy(model.forward(x), labels);
loss.backward();
opt.step();
const onnx: Uint8Array = await rg.io.toOnnx(model, { inputShape: [16] });
console.log(JSON.stringify({ before, after: lossOf(), onnxBytes: onnx.length }));
