/**
 * WebGPU in one call: `await rg.useWebGPU()` finds the adapter, opens the device, registers the
 * backend and makes it the one new tensors land on; where none is usable it throws a
 * WebGPUUnavailableError whose `reason` and message say why (no WebGPU API, no adapter, only a
 * software adapter unless `allowSoftware`, a refused device), so a program can say so or stay
 * on the CPU.
 */
import { acquireWebGPU, type WebGPUBackend } from "./webgpu.ts";
import { registerBackend, setBackend } from "./registry.ts";

export interface UseWebGPUOptions {
  /** Accept a software (fallback) adapter such as lavapipe or SwiftShader: slower than the CPU backend, but it runs. */
  allowSoftware?: boolean;
  /** A GPU object of the caller's, where the runtime has no navigator.gpu (Node: the npm `webgpu` package's create([])). */
  gpu?: GPU;
}

export async function useWebGPU(opts: UseWebGPUOptions = {}): Promise<WebGPUBackend> {
  const backend = await acquireWebGPU({ allowFallback: opts.allowSoftware ?? false, gpu: opts.gpu });
  registerBackend(backend);
  setBackend(backend.name);
  return backend;
}
