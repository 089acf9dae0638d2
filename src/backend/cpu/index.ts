/**
 * The CPU backend's public face: `createCpuBackend()` (src/mod.ts registers it as the default
 * backend's factory) and the choice of kernel build for every CPU backend, now and later.
 */
import { compileRelaxed, kernelModules } from "./builds.ts";
import { CpuBackend } from "./backend.ts";
import { checkConvAlgorithm, type ConvAlgorithm } from "./conv_algorithm.ts";

export { CpuBackend } from "./backend.ts";
export { CONV_ALGORITHMS, type ConvAlgorithm } from "./conv_algorithm.ts";

const cpuBackends = new Set<WeakRef<CpuBackend>>();
let deterministic = true;
let convAlgorithm: ConvAlgorithm = "direct";

export function createCpuBackend(): CpuBackend {
  const backend = new CpuBackend(kernelModules, !deterministic);
  backend.convAlgorithm = convAlgorithm;
  cpuBackends.add(new WeakRef(backend));
  return backend;
}

function liveBackends(): CpuBackend[] {
  const live: CpuBackend[] = [];
  for (const ref of cpuBackends) {
    const b = ref.deref();
    if (!b) cpuBackends.delete(ref);
    else live.push(b);
  }
  return live;
}

/**
 * The algorithm of the 3×3 stride-1 pad-1 convolutions on every CPU backend, now and later:
 * "direct" (the default), "winograd" (F(2×2, 3×3) wherever it applies) or "auto" (Winograd
 * for the layer shapes where it measured faster). A ValueError names anything else.
 */
export function setConvAlgorithm(a: ConvAlgorithm): void {
  convAlgorithm = checkConvAlgorithm(a);
  for (const b of liveBackends()) b.convAlgorithm = convAlgorithm;
}

/** The algorithm set by setConvAlgorithm. */
export function getConvAlgorithm(): ConvAlgorithm {
  return convAlgorithm;
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
  for (const b of liveBackends()) await b.setRelaxedSimd(!deterministic);
  return deterministic;
}

/** Are the CPU kernels the deterministic (plain SIMD128) build? */
export function isDeterministic(): boolean {
  return deterministic;
}
