/**
 * --backend: cpu (the wasm kernels, always there), webgpu (any adapter, software ones
 * included), or auto (a real, non-fallback GPU adapter when there is one, else cpu).
 */
import { registerBackend, setBackend } from "../src/backend/registry.ts";
import { createWebGPUBackend } from "../src/backend/webgpu.ts";
import { UsageError } from "./flags.ts";

export async function selectBackend(name: string): Promise<string> {
  if (name === "cpu") return setBackend("cpu").name;
  const gpu = await createWebGPUBackend({ allowFallback: name === "webgpu" });
  if (gpu) {
    registerBackend(gpu);
    return setBackend(gpu.name).name;
  }
  if (name === "auto") return setBackend("cpu").name;
  throw new UsageError("--backend webgpu: no WebGPU adapter found in this runtime (Deno and browsers provide one); use --backend cpu");
}
