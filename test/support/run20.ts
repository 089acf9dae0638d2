/**
 * The cross-runtime determinism run: seed, build ResNet-20 (3×8×8 inputs, 4 classes), make a
 * fixed synthetic dataset, train 20 SGD steps (momentum, weight decay, seeded shuffling) on the
 * CPU backend, and report every step's loss and a SHA-256 over the final state dict's bytes;
 * first on the default kernel build (relaxed where the start-up probe finds relaxed_madd
 * fused), then, where that was the relaxed build, again on the plain build.
 * Runtime-free (only web-standard APIs), so the same file runs under Node (bundled), Deno with
 * no permissions, a Deno or browser module worker, and a browser page. Inside a worker the
 * result is posted to the parent; elsewhere it is printed as one JSON line. Timing and memory
 * figures ride along for docs/edge.md; the determinism check compares kernels, losses and hashes.
 */
import * as rg from "../../src/mod.ts";

/** One run's step losses and final weights. */
export interface Run20Bits {
  losses: number[];
  weightsSha256: string;
}

export interface Run20Result extends Run20Bits {
  /** The default kernel build, and what the probe found (src/backend/cpu/madd_probe.ts). */
  kernels: rg.CpuKernels;
  relaxedMadd: rg.MaddRounding;
  /** The plain build's run, where the default was the relaxed one. */
  plain?: Run20Bits;
  /** performance.now() when the module body started and when the first step finished. */
  moduleStartMs: number;
  firstStepMs: number;
  totalMs: number;
  peakBytes: number;
  rssBytes: number | null;
}

const moduleStartMs = performance.now();

async function trainAndHash(): Promise<Run20Bits & { firstStepMs: number }> {
  rg.setBackend("cpu");
  rg.manualSeed(20);
  const model = rg.models.resnet20({ inChannels: 3, numClasses: 4 });
  const data = rg.data.synthetic({ n: 64, channels: 3, height: 8, width: 8, classes: 4, seed: 7 });
  const loader = new rg.data.DataLoader(data, { batchSize: 16, shuffle: true, dropLast: true, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const optimizer = new rg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  model.train();
  const losses: number[] = [];
  let firstStepMs = 0;
  while (losses.length < 20) {
    for (const { x, labels } of loader.epoch()) {
      const loss = rg.tidy(() => {
        optimizer.zeroGrad();
        const l = rg.crossEntropy(model.forward(x), labels);
        l.backward();
        optimizer.step();
        return l;
      });
      x.dispose();
      losses.push((await loss.data())[0]);
      loss.dispose();
      if (losses.length === 1) firstStepMs = performance.now();
      if (losses.length === 20) break;
    }
  }
  const parts = [...model.stateDict().values()].map((t) => t.dataSync());
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    all.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  model.dispose();
  for (const buffer of optimizer.stateDict().values()) buffer.dispose();
  return { losses, weightsSha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""), firstStepMs };
}

export async function run20(): Promise<Run20Result> {
  const started = performance.now();
  const kernels = rg.getCpuKernels();
  const { firstStepMs, ...bits } = await trainAndHash();
  const totalMs = performance.now() - started;
  const peakBytes = rg.memory().peakBytes;
  let plain: Run20Bits | undefined;
  if (kernels === "relaxed") {
    await rg.setCpuKernels("plain");
    const { firstStepMs: _, ...plainBits } = await trainAndHash();
    plain = plainBits;
  }
  const g = globalThis as { Deno?: { memoryUsage?(): { rss: number } }; process?: { memoryUsage?(): { rss: number } } };
  let rssBytes: number | null = null;
  try {
    rssBytes = g.Deno?.memoryUsage?.().rss ?? g.process?.memoryUsage?.().rss ?? null;
  } catch {
    rssBytes = null; // a host that forbids it
  }
  return { kernels, relaxedMadd: rg.relaxedMaddRounding(), ...bits, ...(plain ? { plain } : {}), moduleStartMs, firstStepMs, totalMs, peakBytes, rssBytes };
}

const result = await run20();
const scope = globalThis as { WorkerGlobalScope?: unknown; postMessage?(m: unknown): void; document?: unknown };
if (scope.WorkerGlobalScope !== undefined && scope.document === undefined) scope.postMessage!(result);
else console.log(JSON.stringify(result));
