/**
 * Which backend new tensors land on. Backends are registered by name, as an instance or as a
 * factory that builds one on first use, so importing the tensor core pulls in no backend (and
 * no kernel module): `src/mod.ts` registers the CPU (wasm) backend as the default, and a
 * WebGPU backend registers itself once an adapter is found.
 */
import type { Backend } from "./backend.ts";
import { ValueError } from "../errors.ts";

/** The backend new tensors land on unless setBackend() chose another. */
export const DEFAULT_BACKEND = "cpu";

const factories = new Map<string, () => Backend>();
const backends = new Map<string, Backend>();
let current: Backend | null = null;

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

/** Build the backend `name` with `factory` when it is first asked for. */
export function registerBackendFactory(name: string, factory: () => Backend): void {
  factories.set(name, factory);
}

export function getBackend(name?: string): Backend {
  if (name === undefined) return (current ??= getBackend(DEFAULT_BACKEND));
  let backend = backends.get(name);
  const factory = factories.get(name);
  if (!backend && factory) registerBackend((backend = factory()));
  if (!backend) {
    const known = [...new Set([...backends.keys(), ...factories.keys()])];
    throw new ValueError(`unknown backend "${name}"; registered: ${known.join(", ") || "none (import retrograd's mod.ts, which registers the CPU backend)"}`);
  }
  return backend;
}

/** Make `name` the backend for new tensors. */
export function setBackend(name: string): Backend {
  current = getBackend(name);
  return current;
}
