/**
 * Which algorithm the CPU backend's 3×3 convolutions use: "direct" (the register-blocked
 * direct kernels of assembly/conv.ts, everywhere), "winograd" (F(2×2, 3×3) minimal filtering,
 * assembly/winograd.ts, for every 3×3 stride-1 pad-1 layer it applies to, forward and input
 * gradient) or "auto" (Winograd only for the layer shapes in WINOGRAD_WINS, where an
 * interleaved A/B measurement found it faster; the direct kernels everywhere else). Like
 * cuDNN's and oneDNN's heuristics, the choice is a per-shape table, not a model. Both
 * algorithms are deterministic (fixed summation order, the same bits at any thread count),
 * but they round differently: switching changes the low bits of a run.
 */
import { ValueError } from "../../errors.ts";
import type { ConvGeometry } from "../backend.ts";

export type ConvAlgorithm = "direct" | "winograd" | "auto";

export const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ["direct", "winograd", "auto"];

/** `a` as a ConvAlgorithm, or a ValueError naming the option and what it may be. */
export function checkConvAlgorithm(a: unknown): ConvAlgorithm {
  if (typeof a === "string" && (CONV_ALGORITHMS as readonly string[]).includes(a)) return a as ConvAlgorithm;
  throw new ValueError(`convAlgorithm: ${JSON.stringify(a)} is not one of ${CONV_ALGORITHMS.map((x) => `"${x}"`).join(", ")}`);
}

/** The pass of a convolution that Winograd may compute. */
export type WinogradPass = "forward" | "backwardInput";

/**
 * Layer shapes ("pass C→O H×W") where Winograd won the interleaved A/B of bench/winograd.ts
 * (medians, one process, on the machine of the table's commit); "auto" uses Winograd there only.
 */
const WINOGRAD_WINS: ReadonlySet<string> = new Set<string>([]);

function shapeKey(pass: WinogradPass, g: ConvGeometry): string {
  return `${pass} ${g.C}→${g.O} ${g.H}×${g.W}`;
}

/** Should `pass` of this layer go to the Winograd kernel (which must also say it applies)? */
export function wantsWinograd(algorithm: ConvAlgorithm, pass: WinogradPass, g: ConvGeometry): boolean {
  if (algorithm === "direct") return false;
  if (algorithm === "winograd") return true;
  return WINOGRAD_WINS.has(shapeKey(pass, g));
}
