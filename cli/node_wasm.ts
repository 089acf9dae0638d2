/**
 * Relaxed SIMD under Node 20: its V8 (11.3) implements the relaxed-SIMD instructions behind
 * a flag (on by default from V8 11.4). Turning the flag on lets `setCpuKernels` use them
 * (src/backend/cpu/builds.ts and madd_probe.ts detect support by validating their modules):
 * the library's import-time choice ran without it, so `setCpuKernels("auto")` must run again
 * after this to make the relaxed build the default where the probe finds it fused, as it is
 * under Deno and newer Node. A no-op elsewhere: they have relaxed SIMD on by default.
 */
import { setFlagsFromString } from "node:v8";

/** The V8 flags this Node needs for relaxed SIMD (none under Deno and Node ≥ 21); a child process takes them on its command line. */
export function nodeRelaxedSimdFlags(): string[] {
  if (typeof (globalThis as { Deno?: unknown }).Deno === "object") return [];
  const [major, minor] = (globalThis as { process?: { versions?: { v8?: string } } }).process?.versions?.v8?.split(".").map(Number) ?? [0, 0];
  return major < 11 || (major === 11 && minor < 4) ? ["--experimental-wasm-relaxed-simd"] : [];
}

export function enableNodeRelaxedSimd(): void {
  for (const flag of nodeRelaxedSimdFlags()) setFlagsFromString(flag);
}
