/**
 * --backend: cpu (the wasm kernels, always there), webgpu (any adapter, software ones
 * included), or auto (a real, non-fallback GPU adapter when there is one, else cpu).
 */
import { registerBackend, setBackend } from "../src/backend/registry.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import { UsageError } from "./flags.ts";

/**
 * Node has no navigator.gpu; the optional npm `webgpu` package (Dawn) provides one when it is
 * installed and finds an adapter. It is never required: without it Node simply has no GPU.
 */
async function nodeGpu(): Promise<GPU | undefined> {
  if ((globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu) return undefined;
  try {
    const name = "webgpu"; // not a static import: the package is optional
    const dawn = await import(name) as { create(flags: string[]): GPU; globals?: object };
    if (dawn.globals) Object.assign(globalThis, dawn.globals);
    return dawn.create([]);
  } catch {
    return undefined;
  }
}

export async function selectBackend(name: string): Promise<string> {
  if (name === "cpu") return setBackend("cpu").name;
  const gpu = await createWebGPUBackend({ allowFallback: name === "webgpu", gpu: await nodeGpu() });
  if (gpu) {
    registerBackend(gpu);
    return setBackend(gpu.name).name;
  }
  if (name === "auto") return setBackend("cpu").name;
  throw new UsageError("--backend webgpu: no WebGPU adapter found (Deno and browsers provide WebGPU; Node needs the optional npm package `webgpu` and a GPU); use --backend cpu");
}
