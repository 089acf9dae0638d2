/**
 * Continuing a retrograd run in PyTorch's distributed training (scripts/torch_continue.py):
 * a real `retrograd train` run of ResNet-20 on Fashion-MNIST leaves a checkpoint (model,
 * momentum buffers, settings); torchrun then continues it for three steps in two gloo
 * processes on localhost. Retrograd redoes those steps from the same checkpoint on the same
 * batches with DDP's semantics (each process's share of the batch normalised by its own
 * statistics, the loss and the gradients averaged over the shares): the first step's loss
 * must agree within float32 rounding (the weights arrived intact), and so must the second's
 * (the first update, momentum buffers included, was the same); the state dict PyTorch writes
 * at the end must load into retrograd as `eval --weights` and `train --init` load it. Needs Debian's python3-torch and
 * Fashion-MNIST; skipped with the reason otherwise. It spawns the processes itself, so it
 * runs from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { nodeFs } from "../cli/files.ts";

const isDeno = "Deno" in globalThis;
const python = "/usr/bin/python3";
const hasTorch = !isDeno && spawnSync(python, ["-c", "import torch.distributed as d; assert d.is_gloo_available()"]).status === 0;
const hasData = existsSync("/usr/share/datasets/fashion-mnist");
const skipReason = isDeno ? "runs from the Node pass (it spawns the processes itself)"
  : !hasTorch ? "PyTorch with gloo is not installed (apt-get install -y python3-torch)"
  : !hasData ? "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)" : "";
if (skipReason) console.log(`torch_continue.test: skipped: ${skipReason}`);
const torchTest = skipReason ? test.skip : test;

const LR = 0.05;

function run(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 600_000, env: { ...process.env, ...env } });
  assert.is(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

interface StepLog { step: number; loss: number; world: number; indices: number[] }

torchTest("a retrograd checkpoint continues in torch.distributed (2 gloo processes): the same losses, weights that load back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-torch-"));
  const runDir = join(dir, "run");
  // On the plain kernels, as before #19 made the fused build the default: from the checkpoint the
  // default build trains here (seed 4), the second step's losses differed by 4.4e-5 relative
  // (seed 5: within 1e-5), a starting point where one update is that sensitive to float32 rounding.
  run("node", ["dist/cli.mjs", "train", "--steps", "2", "--batch-size", "16", "--seed", "4", "--deterministic", "--out", runDir, "--json"]);

  const out = join(dir, "torch.safetensors"), log = join(dir, "torch.jsonl");
  // Debian's PyTorch 1.13 under Python 3.11 needs --redirects/--tee other than 0 (a bug of its
  // flag parsing, fixed in 2.0); the processes rendezvous on 127.0.0.1 only.
  run("torchrun", [
    "--redirects", "1", "--tee", "1", "--nnodes", "1", "--nproc_per_node", "2",
    "--master_addr", "127.0.0.1", "--master_port", String(await freePort()),
    "scripts/torch_continue.py", "--run", runDir, "--steps", "3", "--batch-size", "16", "--lr", String(LR),
    "--out", out, "--log", log,
  ], { GLOO_SOCKET_IFNAME: "lo", OMP_NUM_THREADS: "1" });
  const steps = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as StepLog);
  assert.equal(steps.map((s) => [s.step, s.world, s.indices.length]), [[3, 2, 16], [4, 2, 16], [5, 2, 16]]);

  // Retrograd from the same checkpoint, on the same batches, as DDP computes a step.
  const config = JSON.parse(readFileSync(join(runDir, "config.json"), "utf8"));
  const model = rg.models.createModel("resnet20", { inChannels: 1, numClasses: 10, imageSize: 28 });
  const opt = new rg.optim.SGD(model.parameters(), {
    lr: LR, momentum: config.train.momentum, nesterov: config.train.nesterov, weightDecay: config.train.weightDecay,
  });
  const checkpointPath = join(runDir, "checkpoint.safetensors");
  rg.train.decodeCheckpoint(new Uint8Array(readFileSync(checkpointPath)), checkpointPath, model, opt, (_position, extra) => extra);
  const data = await rg.data.loadDataset("fashion-mnist", "train", {}, nodeFs);
  const [mean] = config.train.mean, [std] = config.train.std;
  const batchOf = (indices: number[]) => {
    const x = new Float32Array(indices.length * 784);
    indices.forEach((n, i) => {
      for (let p = 0; p < 784; p++) x[i * 784 + p] = (data.images[n * 784 + p] / 255 - mean) / std;
    });
    return { x: rg.tensor(x, [indices.length, 1, 28, 28]), labels: Int32Array.from(indices, (n) => data.labels[n]) };
  };
  model.train();
  const losses = steps.map(({ indices }) => rg.tidy(() => {
    opt.zeroGrad();
    const [first, second] = [batchOf(indices.slice(0, 8)), batchOf(indices.slice(8))];
    const loss0 = rg.crossEntropy(model.forward(first.x), first.labels);
    const loss1 = rg.nn.frozenStats(model, () => rg.crossEntropy(model.forward(second.x), second.labels)); // rank 1's statistics are not kept
    const loss = rg.scale(rg.add(loss0, loss1), 0.5);
    loss.backward();
    opt.step();
    return loss.item();
  }));
  // The first two losses test the checkpoint's weights and then one whole update (DDP's averaged
  // gradient, weight decay, Nesterov momentum from the loaded buffers) within float32 rounding.
  // Later steps drift apart at the rate of float32 differences in small-batch BatchNorm
  // (measured here: 6e-5 relative at the third step), so the third is held to 1e-3.
  const agree = (i: number, rtol: number) =>
    assert.ok(Math.abs(steps[i].loss - losses[i]) <= rtol * losses[i], `step ${steps[i].step}: PyTorch ${steps[i].loss}, retrograd ${losses[i]}`);
  agree(0, 1e-5);
  agree(1, 1e-5);
  agree(2, 1e-3);

  // What PyTorch wrote loads as `eval --weights` and `train --init` load it (strictly), and it trained.
  const written = rg.io.readSafetensors(new Uint8Array(readFileSync(out)), out);
  const fresh = rg.models.createModel("resnet20", { inChannels: 1, numClasses: 10, imageSize: 28 });
  fresh.loadStateDict(written);
  const start = rg.io.readSafetensors(new Uint8Array(readFileSync(checkpointPath)), checkpointPath);
  assert.is(written.get("bn1.num_batches_tracked")!.item(), start.get("model.bn1.num_batches_tracked")!.item() + 3);
  const moved = (name: string) => written.get(name)!.dataSync().some((v, i) => v !== start.get(`model.${name}`)!.dataSync()[i]);
  assert.ok(["conv1.weight", "layer2.0.downsample.0.weight", "fc.bias"].every(moved), "the weights moved");
});

test.run();
