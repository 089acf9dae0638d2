/**
 * --backend: cpu (the wasm kernels, always there), webgpu, or auto (a real, non-fallback
 * GPU adapter when one exists, else cpu).
 */
import { setBackend } from "../src/backend/registry.ts";
import { UsageError } from "./flags.ts";

export async function selectBackend(name: string): Promise<string> {
  if (name === "cpu") return setBackend("cpu").name;
  throw new UsageError(`--backend ${name}: the WebGPU backend is not available in this build; use --backend cpu`);
}
