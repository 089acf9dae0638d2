/**
 * Which algorithm the CPU backend's 3×3 convolutions use: "direct" (the register-blocked
 * direct kernels of assembly/conv.ts, everywhere), "winograd" (F(2×2, 3×3) minimal filtering,
 * assembly/winograd.ts, for every 3×3 stride-1 pad-1 layer it applies to: forward, input
 * gradient and weight gradient) or "auto", the default (Winograd only for the layer shapes in
 * WINOGRAD_WINS, where an interleaved A/B measurement found it faster; the direct kernels
 * everywhere else). Like cuDNN's and oneDNN's heuristics, the choice is a per-shape table, not
 * a model. Both algorithms are deterministic (fixed summation order, the same bits at any
 * thread count), but they round differently: switching changes the low bits of a run.
 */
import { ValueError } from "../../errors.ts";
import type { ConvGeometry } from "../backend.ts";

export type ConvAlgorithm = "direct" | "winograd" | "auto";

export const CONV_ALGORITHMS: readonly ConvAlgorithm[] = ["direct", "winograd", "auto"];

/**
 * The algorithm of a CPU backend until setConvAlgorithm says otherwise. Whole training steps,
 * direct and auto interleaved in one process (bench/winograd.ts --step, default kernel build),
 * ran 1.14× (ResNet-20, batch 64) and 1.24× (ResNet-18, batch 32) faster with "auto" on one
 * thread, 1.19× and 1.06× on two (on a shared, loaded machine: see docs/performance.md).
 */
export const DEFAULT_CONV_ALGORITHM: ConvAlgorithm = "auto";

/** `a` as a ConvAlgorithm, or a ValueError naming the option and what it may be. */
export function checkConvAlgorithm(a: unknown): ConvAlgorithm {
  if (typeof a === "string" && (CONV_ALGORITHMS as readonly string[]).includes(a)) return a as ConvAlgorithm;
  throw new ValueError(`convAlgorithm: ${JSON.stringify(a)} is not one of ${CONV_ALGORITHMS.map((x) => `"${x}"`).join(", ")}`);
}

/** The pass of a convolution that Winograd may compute. */
export type WinogradPass = "forward" | "backwardInput" | "backwardWeight";

/**
 * Layer shapes ("pass C→O H×W", any batch) where Winograd was at least 1.1× faster than the
 * direct kernels in every interleaved A/B of bench/winograd.ts (1 thread, medians of 9–11
 * rounds; docs/data/winograd/ab-*.json, 2026-11-30, a shared 2-core Zen 3): ResNet-20 on
 * 3×32×32 and on Fashion-MNIST's 1×28×28, ResNet-18 with the CIFAR stem. The 16-channel 32×32
 * and 28×28 input gradients (0.96–1.33× there, under load) joined on 2026-12-02, when three quiet
 * runs at 1 and 2 threads on the default (relaxed) kernels of a Zen 5 found them 1.57–1.62× and
 * 1.29–1.40× faster, and every other entry still at least 1.1×
 * (docs/data/winograd/ab-2026-12-02-*.json). ResNet-18's 512-channel 4×4 forward and input
 * gradient joined that afternoon, when narrow planes got the dense tile layout (before, their
 * 2×2 tiles filled half of each group of 4 and they ran at 0.75–0.96×): 1.11–1.17× and
 * 1.30–1.41× in three runs at 1 and 2 threads (ab-2026-12-02-dense-*.json). Not here, because
 * they lost or did not win every time: the stems (1 or 3 input channels). Weight gradients: since the Winograd weight gradient
 * sums blocks of at least 64 tiles (2026-12-02; before, a deep layer's block held 4–16 tiles and
 * each gemm re-read and re-wrote the whole 16·O·C gradient for a product that short), every
 * layer of 16–256 channels wins, 1.37–1.97× in two quiet runs at 1 and 2 threads
 * (docs/data/winograd/ab-2026-12-02-weight-blocks-*.json), and the 512-channel 4×4 layer since
 * its tiles are numbered densely too (1.37–1.52×, ab-2026-12-02-dense-weight-*.json; 0.82–0.98×
 * before); the stems do not.
 * "auto" uses Winograd for these shapes only.
 */
const WINOGRAD_WINS: ReadonlySet<string> = new Set<string>([
  "forward 16→16 32×32", "backwardInput 16→16 32×32",
  "forward 32→32 16×16", "backwardInput 32→32 16×16",
  "forward 64→64 8×8", "backwardInput 64→64 8×8",
  "forward 16→16 28×28", "backwardInput 16→16 28×28",
  "forward 32→32 14×14", "backwardInput 32→32 14×14",
  "forward 64→64 7×7", "backwardInput 64→64 7×7",
  "forward 64→64 32×32", "backwardInput 64→64 32×32",
  "forward 128→128 16×16", "backwardInput 128→128 16×16",
  "forward 256→256 8×8", "backwardInput 256→256 8×8",
  "forward 512→512 4×4", "backwardInput 512→512 4×4",
  "backwardWeight 16→16 32×32", "backwardWeight 32→32 16×16", "backwardWeight 64→64 8×8",
  "backwardWeight 16→16 28×28", "backwardWeight 32→32 14×14", "backwardWeight 64→64 7×7",
  "backwardWeight 64→64 32×32", "backwardWeight 128→128 16×16", "backwardWeight 256→256 8×8",
  "backwardWeight 512→512 4×4",
]);

function shapeKey(pass: WinogradPass, g: ConvGeometry): string {
  return `${pass} ${g.C}→${g.O} ${g.H}×${g.W}`;
}

/** Should `pass` of this layer go to the Winograd kernel (which must also say it applies)? */
export function wantsWinograd(algorithm: ConvAlgorithm, pass: WinogradPass, g: ConvGeometry): boolean {
  if (algorithm === "direct") return false;
  if (algorithm === "winograd") return true;
  return WINOGRAD_WINS.has(shapeKey(pass, g));
}
