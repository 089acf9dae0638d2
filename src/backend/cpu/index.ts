/**
 * The CPU backend's public face: `createCpuBackend()` (src/mod.ts registers it as the default
 * backend's factory) and the choice of kernel build for every CPU backend, now and later.
 * The default ("auto") is settled at import: the relaxed-SIMD build where the start-up probe
 * (madd_probe.ts) finds relaxed_madd fused, because a fused multiply-add has one correct
 * result and so gives the same bits on every engine and machine that fuses; the plain
 * SIMD128 build everywhere else, because an unfused or unknown relaxed_madd would make the
 * bits depend on the engine and CPU.
 */
import { ValueError } from "../../errors.ts";
import { compileRelaxed, kernelModules } from "./builds.ts";
import { CpuBackend } from "./backend.ts";
import { checkConvAlgorithm, type ConvAlgorithm, DEFAULT_CONV_ALGORITHM } from "./conv_algorithm.ts";
import { type MaddRounding, probeRelaxedMadd } from "./madd_probe.ts";
import { setTileLoadsChoice, type TileLoads, type TileLoadsChoice, tileLoadsFor } from "./tile_loads.ts";

export { CpuBackend } from "./backend.ts";
export { CONV_ALGORITHMS, type ConvAlgorithm, DEFAULT_CONV_ALGORITHM } from "./conv_algorithm.ts";
export type { MaddRounding } from "./madd_probe.ts";
export { TILE_LOADS_CHOICES, type TileLoads, type TileLoadsChoice, tileLoadsTiming, type TileLoadsTiming } from "./tile_loads.ts";

/** The kernel builds: plain SIMD128, or relaxed SIMD (f32x4.relaxed_madd in the gemm and convolution micro-kernels). */
export type CpuKernels = "plain" | "relaxed";
/** What setCpuKernels takes: a build, or "auto" (relaxed where the probe finds relaxed_madd fused, else plain). */
export type CpuKernelChoice = "auto" | CpuKernels;
export const CPU_KERNEL_CHOICES: readonly CpuKernelChoice[] = ["auto", "plain", "relaxed"];

const cpuBackends = new Set<WeakRef<CpuBackend>>();
let kernels: CpuKernels = "plain";
let maddRounding: MaddRounding = "unsupported";
let convAlgorithm: ConvAlgorithm = DEFAULT_CONV_ALGORITHM;

export function createCpuBackend(): CpuBackend {
  const backend = new CpuBackend(kernelModules, kernels === "relaxed");
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
 * "auto" (the default: Winograd for the layer shapes where it measured faster, the direct
 * kernels elsewhere), "direct" (the direct kernels everywhere: the bits of runs from before
 * "auto" was the default) or "winograd" (F(2×2, 3×3) wherever it applies). A ValueError names
 * anything else.
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
 * The kernel build of every CPU backend, now and later: "auto" (the default at import) runs
 * the relaxed_madd probe again and takes the relaxed build where it says "fused", else the
 * plain one; "plain" and "relaxed" force a build (relaxed falls back to plain where this
 * runtime lacks relaxed SIMD). Returns the build in effect. A ValueError names anything else.
 * Every build gives the same bits at any thread count; the plain build also on every runtime
 * and machine, the relaxed build on every engine and machine whose probe says "fused".
 */
export async function setCpuKernels(choice: CpuKernelChoice): Promise<CpuKernels> {
  if (!(CPU_KERNEL_CHOICES as readonly unknown[]).includes(choice)) {
    throw new ValueError(`cpu kernels: ${JSON.stringify(choice)} is not one of ${CPU_KERNEL_CHOICES.map((x) => `"${x}"`).join(", ")}`);
  }
  // Probed on every call: Node 20 turns relaxed SIMD on by a flag after import (cli/node_wasm.ts).
  maddRounding = probeRelaxedMadd();
  const wanted = choice === "auto" ? (maddRounding === "fused" ? "relaxed" : "plain") : choice;
  const relaxed = wanted === "relaxed" ? await compileRelaxed() : null;
  kernels = relaxed === null ? "plain" : "relaxed";
  for (const b of liveBackends()) await b.setRelaxedSimd(kernels === "relaxed");
  return kernels;
}

/** The kernel build in effect on the CPU backends. */
export function getCpuKernels(): CpuKernels {
  return kernels;
}

/** How this engine rounds relaxed_madd, as the probe found at the last setCpuKernels (import included). */
export function relaxedMaddRounding(): MaddRounding {
  return maddRounding;
}

/**
 * For tests and benches (not exported from mod.ts: the probe's choice needs no user).
 * How the plain build's register tile loads its A values on every CPU backend, now and later:
 * "auto" (the default: timed both ways the first time the plain build runs, see
 * tile_loads.ts), "splat" or "shuffle". Speed only: every shape gives the same bits. Returns
 * the shape in effect. A ValueError names anything else.
 */
export async function setTileLoads(choice: TileLoadsChoice): Promise<TileLoads> {
  setTileLoadsChoice(choice);
  for (const b of liveBackends()) await b.refreshTileLoads();
  return getTileLoads();
}

/** The plain build's tile loads in effect (runs the timing probe if "auto" has not yet measured). */
export function getTileLoads(): TileLoads {
  return tileLoadsFor(kernelModules.plain);
}

/** The older switch: true forces the plain build, false the relaxed one; returns whether the plain build is in effect. */
export async function setDeterministic(on: boolean): Promise<boolean> {
  return (await setCpuKernels(on ? "plain" : "relaxed")) === "plain";
}

/** Are the CPU kernels the plain SIMD128 build, bit-identical on every runtime and machine? */
export function isDeterministic(): boolean {
  return kernels === "plain";
}

await setCpuKernels("auto");
