/**
 * How the plain build's register tile loads its four A values per step: four splat loads, or
 * one v128.load and four shuffles. Both compute the same values with the same multiply-adds
 * in the same order (the same bits); which is faster depends on the engine. Under V8 with its
 * wasm trap handler (Node) every load is free of bounds checks and the splats win by 3–8 % of
 * a ResNet-20 step; under V8 without it (Deno 2.x) each load carries an explicit check and the
 * single load wins by 4–12 % (docs/performance.md, "Under Deno"). No API tells a program
 * which engine embedding it runs in, and naming the runtime is the adapters' job, so the shape
 * is measured, like FFTW's planner or cuDNN's benchmark mode: the first time a backend runs
 * the plain build, `timeTileLoads` times the tile both ways (20–35 ms) and the shuffles are
 * kept where they are clearly faster (the first call of each shape runs in the engine's
 * baseline tier, so only each shape's fastest call counts). The relaxed build always shuffles
 * (its fused multiply-adds leave the shuffle slots free).
 */
import { checkKernelExports, type Kernels } from "./abi.ts";
import { HEAP_BASE, PAGE } from "./heap.ts";
import { ValueError } from "../../errors.ts";

/** The A-load shape of the plain build's register tile. */
export type TileLoads = "splat" | "shuffle";
/** What setTileLoads takes: a shape, or "auto" (measured at first use). */
export type TileLoadsChoice = "auto" | TileLoads;
export const TILE_LOADS_CHOICES: readonly TileLoadsChoice[] = ["auto", "splat", "shuffle"];

/** Repetitions of the tile's 256 steps per timed call: about a millisecond. */
const REPS = 2500;
/** Timed calls of each shape, alternating. */
const PAIRS = 8;
/**
 * The shuffles must beat the splats by this factor. Seen on the Zen 5: Deno 0.94 (quiet) to
 * 0.69 (the host busy); Node 1.29 (quiet) but 1.00–1.04 while the host is busy, when the two
 * shapes run a step equally fast, and the shuffles then cost a Node process 10 % once the host
 * is quiet again. So a near tie keeps the splats.
 */
const MARGIN = 0.97;

/** The fastest call of each shape, and the clock's step, in milliseconds. */
export interface TileLoadsTiming {
  splatMs: number;
  shuffleMs: number;
  clockStepMs: number;
}

/**
 * The smallest step of performance.now() seen: microseconds in Node and Deno, but browsers
 * coarsen it (to 100 µs or 1 ms outside cross-origin isolation), where a 1 ms call cannot be
 * told from a 0.9 ms one.
 */
function clockStep(): number {
  const t0 = performance.now();
  for (let i = 0; i < 100_000; i++) {
    const t = performance.now();
    if (t !== t0) return t - t0;
  }
  return Infinity; // no tick in ~100 000 reads (a clock coarsened to tens of ms): nothing to time with
}

/** Time `tile_loads_probe` both ways on a private instance of `module` (the plain build). */
export function timeTileLoads(module: WebAssembly.Module): TileLoadsTiming {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const k: Kernels = checkKernelExports(new WebAssembly.Instance(module, { env: { memory } }).exports);
  memory.grow(Math.ceil((HEAP_BASE + k.gemm_scratch_bytes()) / PAGE) - 1); // the gemm scratch above the static data
  k.set_gemm_scratch(HEAP_BASE);
  const best = [Infinity, Infinity];
  for (let pair = 0; pair < PAIRS; pair++) {
    for (const shuffled of [0, 1]) {
      const t0 = performance.now();
      k.tile_loads_probe(shuffled, REPS);
      best[shuffled] = Math.min(best[shuffled], performance.now() - t0);
    }
  }
  return { splatMs: best[0], shuffleMs: best[1], clockStepMs: clockStep() };
}

/** The shape a timing argues for: the shuffles only where they win by more than the margin and by more than the clock can blur. */
export function chooseTileLoads(t: TileLoadsTiming): TileLoads {
  return t.shuffleMs < MARGIN * t.splatMs && t.splatMs - t.shuffleMs > 2 * t.clockStepMs ? "shuffle" : "splat";
}

let choice: TileLoadsChoice = "auto";
let measured: TileLoads | undefined;
let lastTiming: TileLoadsTiming | null = null;

/** The shape for the plain build's instances: the choice, or the probe's (run once, on first call; the splats where it cannot run). */
export function tileLoadsFor(plain: WebAssembly.Module): TileLoads {
  if (choice !== "auto") return choice;
  if (measured === undefined) {
    try {
      measured = chooseTileLoads(lastTiming = timeTileLoads(plain));
    } catch {
      measured = "splat"; // no memory for a private instance: the shape is speed only
    }
  }
  return measured;
}

/** Set the choice (checked); the backends' instances follow it through setTileLoads in index.ts. */
export function setTileLoadsChoice(c: TileLoadsChoice): void {
  if (!(TILE_LOADS_CHOICES as readonly unknown[]).includes(c)) {
    throw new ValueError(`cpu tile loads: ${JSON.stringify(c)} is not one of ${TILE_LOADS_CHOICES.map((x) => `"${x}"`).join(", ")}`);
  }
  choice = c;
}

/** The probe's timing, if it ran (diagnostics: the bench prints it). */
export function tileLoadsTiming(): TileLoadsTiming | null {
  return lastTiming;
}
