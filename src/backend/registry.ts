/**
 * Which backend new tensors land on. The CPU (wasm) backend is always there and is the
 * default; other backends register themselves when they can run (WebGPU needs an adapter).
 */
import type { Backend } from "./backend.ts";
import { createCpuBackend } from "./cpu.ts";
import { ValueError } from "../errors.ts";

const backends = new Map<string, Backend>();
let current: Backend | null = null;

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function getBackend(name?: string): Backend {
  if (name === undefined) {
    if (current === null) current = getBackend("cpu");
    return current;
  }
  let backend = backends.get(name);
  if (!backend && name === "cpu") registerBackend((backend = createCpuBackend()));
  if (!backend) {
    throw new ValueError(`unknown backend "${name}"; available: ${[...backends.keys(), "cpu"].filter((v, i, a) => a.indexOf(v) === i).join(", ")}`);
  }
  return backend;
}

/** Make `name` the backend for new tensors. */
export function setBackend(name: string): Backend {
  current = getBackend(name);
  return current;
}
