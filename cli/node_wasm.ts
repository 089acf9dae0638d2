/**
 * Relaxed SIMD under Node 20: its V8 (11.3) implements the relaxed-SIMD instructions behind
 * a flag (on by default from V8 11.4). Turning the flag on before the relaxed kernels are
 * compiled lets `setDeterministic(false)` use them (src/backend/cpu/builds.ts detects support by
 * validating the module). The plain build, the default, is unaffected. A no-op elsewhere:
 * Deno and newer Node have relaxed SIMD on by default.
 */
import { setFlagsFromString } from "node:v8";

export function enableNodeRelaxedSimd(): void {
  if (typeof (globalThis as { Deno?: unknown }).Deno === "object") return;
  const [major, minor] = (globalThis as { process?: { versions?: { v8?: string } } }).process?.versions?.v8?.split(".").map(Number) ?? [0, 0];
  if (major < 11 || (major === 11 && minor < 4)) setFlagsFromString("--experimental-wasm-relaxed-simd");
}
