/**
 * The CPU backend's public face: `createCpuBackend()` (src/mod.ts registers it as the default
 * backend's factory) and the choice of kernel build for every CPU backend, now and later.
 */
import { compileRelaxed, kernelModules } from "./builds.ts";
import { CpuBackend } from "./backend.ts";

export { CpuBackend } from "./backend.ts";

const cpuBackends = new Set<WeakRef<CpuBackend>>();
let deterministic = true;

export function createCpuBackend(): CpuBackend {
  const backend = new CpuBackend(kernelModules, !deterministic);
  cpuBackends.add(new WeakRef(backend));
  return backend;
}

/**
 * Deterministic kernels (true, the default): the plain SIMD128 build, the same bits on every
 * runtime, machine and thread count. false: the relaxed-SIMD build where this runtime supports
 * it (fused multiply-add: faster, and still the same bits for every thread count on one
 * machine). Applies to every CPU backend, now and later; returns whether the kernels in
 * effect are the deterministic ones (true where relaxed SIMD is unsupported).
 */
export async function setDeterministic(on: boolean): Promise<boolean> {
  const relaxed = on ? null : await compileRelaxed();
  deterministic = relaxed === null;
  for (const ref of cpuBackends) {
    const b = ref.deref();
    if (!b) cpuBackends.delete(ref);
    else await b.setRelaxedSimd(!deterministic);
  }
  return deterministic;
}

/** Are the CPU kernels the deterministic (plain SIMD128) build? */
export function isDeterministic(): boolean {
  return deterministic;
}
