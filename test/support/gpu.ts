/// <reference types="@webgpu/types" />
/**
 * What the WebGPU tests share: the backend (created once per test file, on any adapter,
 * lavapipe included), tests that register as skipped where there is none, the same values on
 * both backends, and the tolerances of GPU-against-CPU comparisons (see test/webgpu.test.ts).
 */
import { test } from "uvu";
import * as rg from "../../src/mod.ts";
import { createWebGPUBackend, type WebGPUBackend } from "../../src/backend/webgpu.ts";
import { uniform } from "../../src/random.ts";
import { assertClose } from "../helpers.ts";
import * as assert from "uvu/assert";

export let gpu: WebGPUBackend | null = null;
let skipReason = "";
try {
  gpu = await createWebGPUBackend({ allowFallback: true });
  if (!gpu) {
    skipReason = (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu
      ? "no adapter"
      : "no navigator.gpu in this runtime";
  }
} catch (e) {
  skipReason = `adapter/device request failed: ${(e as Error).message}`;
}
if (gpu) {
  rg.registerBackend(gpu);
  console.log(`webgpu: testing on ${gpu.adapterDescription}`);
} else {
  console.log(`webgpu: skipped — ${skipReason}`);
}

/** A test that runs only where a WebGPU backend exists (skipped, and counted so, elsewhere). */
export function gpuTest(name: string, fn: (g: WebGPUBackend) => Promise<void> | void): void {
  if (gpu) {
    const backend = gpu;
    test(name, () => fn(backend));
  } else {
    test.skip(name, () => {});
  }
}

export const cpu = () => rg.getBackend("cpu");

/** Run `fn` with `name` as the backend of new tensors, the previous one restored after. */
export function onBackend<T>(name: string, fn: () => T): T {
  const previous = rg.getBackend().name;
  rg.setBackend(name);
  try {
    return fn();
  } finally {
    rg.setBackend(previous);
  }
}

/** Deterministic values in [lo, hi) from the shared hash (stream `key`). */
export function randomValues(n: number, key: number, lo = -1, hi = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = lo + (hi - lo) * uniform(key, i);
  return v;
}

/** The same values on both backends: [cpu tensor, gpu tensor]. */
export function both(values: Float32Array, shape: readonly number[], g: WebGPUBackend, requiresGrad = false): [rg.Tensor, rg.Tensor] {
  const c = rg.tensor(values, shape, cpu());
  const d = rg.tensor(values, shape, g);
  if (requiresGrad) {
    c.requireGrad();
    d.requireGrad();
  }
  return [c, d];
}

export async function compare(
  gpuTensor: rg.Tensor, cpuTensor: rg.Tensor, label: string, tol: { rtol: number; atol: number },
): Promise<void> {
  assert.equal([...gpuTensor.shape], [...cpuTensor.shape], `${label}: shape`);
  assertClose(await gpuTensor.data(), cpuTensor.dataSync(), label, tol);
}

/**
 * f on the same values on both backends: the outputs compared, then the input gradients for
 * the same random dy (stream `dyKey`).
 */
export async function forwardAndBackward(
  g: WebGPUBackend, label: string, values: Float32Array, shape: readonly number[], f: (t: rg.Tensor) => rg.Tensor,
  tol: { rtol: number; atol: number }, dyKey: number,
): Promise<void> {
  const [xc, xg] = both(values, shape, g, true);
  const yc = f(xc), yg = f(xg);
  await compare(yg, yc, `${label} forward`, tol);
  const [dyc, dyg] = both(randomValues(yc.size, dyKey), yc.shape, g);
  yc.backward(dyc);
  yg.backward(dyg);
  await compare(xg.grad!, xc.grad!, `${label} backward`, tol);
}

export const ELEMENTWISE = { rtol: 1e-5, atol: 1e-6 };
export const REDUCTION = { rtol: 1e-4, atol: 1e-5 };
/** GEMM-shaped results with K terms of magnitude ~1: float32 error grows about as √K. */
export const gemmTol = (K: number) => ({ rtol: 1e-4, atol: 1e-6 * Math.max(10, Math.sqrt(K) * 4) });

/** Absolute floor scaled to the tensor's RMS (whole-model comparisons). */
export function modelTol(expected: ArrayLike<number>): { rtol: number; atol: number } {
  let s = 0;
  for (let i = 0; i < expected.length; i++) s += expected[i] * expected[i];
  return { rtol: 1e-3, atol: Math.max(1e-6, 1e-3 * Math.sqrt(s / Math.max(1, expected.length))) };
}


/** Build the same model on the GPU: construct under setBackend("webgpu"), then copy the CPU model's values. */
export function mirrorOnGpu<M extends rg.nn.Module>(make: () => M, cpuModel: M): M {
  const model = onBackend("webgpu", make);
  // Not loadStateDict: BatchNorm2d.afterLoad reads num_batches_tracked with dataSync, which
  // a GPU tensor cannot do. Writing the values directly is the same copy without that hook.
  const source = cpuModel.stateDict();
  for (const [name, t] of model.stateDict()) t.backend.write(t.buffer, source.get(name)!.dataSync());
  return model;
}
