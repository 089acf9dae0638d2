/**
 * Winograd F(2×2, 3×3) against the direct kernels on the CPU backend, per 3×3 stride-1 layer
 * shape of ResNet-20 (batch 64, 3×32×32; 16/32/64 channels) and ResNet-18 with the CIFAR stem
 * (batch 32; 64…512 channels), and of the main job's ResNet-20 on 1×28×28 (batch 64 here),
 * forward, input gradient and weight gradient:
 * - error: max |y − y₆₄| (y₆₄ a float64 direct convolution, on the first images of the batch),
 *   the same divided by max |y₆₄|, and the worst |y − y₆₄| / (2⁻²⁴·Σ|x·w|), for both algorithms;
 * - time: an A/B interleaved in this one process (direct and Winograd alternate, which goes
 *   first alternates too, `--repeats` rounds, medians), at the thread count of `--threads`.
 *   The machine may be shared: the ratio is the figure, the milliseconds are indicative.
 * - `--tile-model`: also the error of bench/winograd_model.ts's float32 model of F(2×2, 3×3)
 *   and F(4×4, 3×3) on the forward and input-gradient passes (the model's F(2×2) beside the
 *   kernel's says how far the model's F(4×4) can be trusted for a kernel not yet written).
 * - `--step`: whole training steps instead (ResNet-20 batch 64, ResNet-18 batch 32) under
 *   "direct", "auto" and "winograd" (or `--algorithms`), at each of `--threads 1,2`, interleaved
 *   step by step, on the default kernel build.
 * JSON on stdout (progress on stderr):
 *
 *   node esbuild.config.mjs && node build/winograd.mjs [--repeats 9] [--threads 1] [--no-time]
 *     [--tile-model] [--channels 512] [--passes forward,backwardInput,backwardWeight | --step [--models resnet20,resnet18]
 *     [--algorithms direct,auto]] > out.json
 */
import * as rg from "../src/mod.ts";
import type { CpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry, DeviceBuffer } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { trainingStep } from "./throughput.ts";
import { conv3x3Errors, conv3x3Reference, conv3x3WeightGradReference, flipTranspose, lcgValues } from "../test/support/conv3x3.ts";
import { F2, F4, winogradModel } from "./winograd_model.ts";

type Pass = "forward" | "backwardInput" | "backwardWeight";
interface Layer { model: string; N: number; C: number; O: number; H: number }

const LAYERS: Layer[] = [
  { model: "resnet20", N: 64, C: 3, O: 16, H: 32 },
  { model: "resnet20", N: 64, C: 16, O: 16, H: 32 },
  { model: "resnet20", N: 64, C: 32, O: 32, H: 16 },
  { model: "resnet20", N: 64, C: 64, O: 64, H: 8 },
  // the main job: ResNet-20 on Fashion-MNIST's 1×28×28 (its batch is 128; 64 here)
  { model: "resnet20-fmnist", N: 64, C: 1, O: 16, H: 28 },
  { model: "resnet20-fmnist", N: 64, C: 16, O: 16, H: 28 },
  { model: "resnet20-fmnist", N: 64, C: 32, O: 32, H: 14 },
  { model: "resnet20-fmnist", N: 64, C: 64, O: 64, H: 7 },
  { model: "resnet18", N: 32, C: 3, O: 64, H: 32 },
  { model: "resnet18", N: 32, C: 64, O: 64, H: 32 },
  { model: "resnet18", N: 32, C: 128, O: 128, H: 16 },
  { model: "resnet18", N: 32, C: 256, O: 256, H: 8 },
  { model: "resnet18", N: 32, C: 512, O: 512, H: 4 },
];
/** Images of the batch the float64 reference covers. */
const CHECKED_IMAGES = 2;

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const repeats = option("repeats", 9);
const threads = option("threads", 1);
const timing = !process.argv.includes("--no-time");
const tileModel = process.argv.includes("--tile-model");
/** A comma-separated option's values. */
function list(name: string, fallback: string): string[] {
  const i = process.argv.indexOf(`--${name}`);
  return (i < 0 ? fallback : process.argv[i + 1]).split(",").filter(Boolean);
}
/** Only the layers with these input channels (`--channels 256,512`; all by default). */
const channels = list("channels", "").map(Number);
const passesAt = process.argv.indexOf("--passes");
const passes = (passesAt < 0 ? "forward,backwardInput,backwardWeight" : process.argv[passesAt + 1]).split(",") as Pass[];
const log = (s: string) => process.stderr.write(`${s}\n`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  installNodeThreads();
  enableNodeRelaxedSimd();
  const kernels = await rg.setCpuKernels("auto"); // the default build (relaxed where relaxed_madd is fused)
  await rg.setThreads(threads);
  const be = rg.getBackend("cpu") as CpuBackend;
  const rows: unknown[] = [];
  for (const [li, L] of LAYERS.entries()) {
    if (channels.length > 0 && !channels.includes(L.C)) continue;
    const { N, C, O, H } = L;
    const g: ConvGeometry = { N, C, H, W: H, O, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, G: 1, OH: H, OW: H };
    const xs = N * C * H * H, ys = N * O * H * H;
    const xv = lcgValues(xs, 1 + li), wv = lcgValues(O * C * 9, 2 + li), dyv = lcgValues(ys, 3 + li);
    const upload = (v: Float32Array): DeviceBuffer => { const b = be.alloc(v.length); be.write(b, v); return b; };
    const x = upload(xv), w = upload(wv), dy = upload(dyv), y = be.alloc(ys), dx = be.alloc(xs), dw = be.alloc(O * C * 9);
    for (const pass of passes) {
      const run = (geometry: ConvGeometry) => pass === "forward" ? be.conv2dForward(x, w, y, geometry)
        : pass === "backwardInput" ? be.conv2dBackwardInput(dy, w, dx, geometry) : be.conv2dBackwardWeight(dy, x, dw, geometry);
      const call = () => run(g);
      const out = () => be.readSync(pass === "forward" ? y : pass === "backwardInput" ? dx : dw);
      const ref = pass === "forward" ? conv3x3Reference(xv, wv, CHECKED_IMAGES, C, O, H, H)
        : pass === "backwardInput" ? conv3x3Reference(dyv, flipTranspose(wv, C, O), CHECKED_IMAGES, O, C, H, H)
        : conv3x3WeightGradReference(xv, dyv, CHECKED_IMAGES, C, O, H, H);
      const error: Record<string, ReturnType<typeof conv3x3Errors>> = {};
      for (const a of ["direct", "winograd"] as const) {
        be.convAlgorithm = a;
        run({ ...g, N: CHECKED_IMAGES }); // the weight gradient sums over the images: only those the reference has
        error[a] = conv3x3Errors(out(), ref);
      }
      if (tileModel && pass !== "backwardWeight") {
        const [src, filters, K, M] = pass === "forward" ? [xv, wv, C, O] : [dyv, flipTranspose(wv, C, O), O, C];
        for (const [name, tiles] of [["F2x2 model", F2], ["F4x4 model", F4]] as const) {
          error[name] = conv3x3Errors(winogradModel(tiles, src, filters, CHECKED_IMAGES, K, M, H, H), ref);
        }
      }
      const ms: Record<string, number[]> = { direct: [], winograd: [] };
      if (timing) {
        for (let r = 0; r < repeats; r++) {
          const order = r % 2 === 0 ? ["direct", "winograd"] as const : ["winograd", "direct"] as const;
          for (const a of order) {
            be.convAlgorithm = a;
            const t0 = performance.now();
            call();
            ms[a].push(performance.now() - t0);
          }
        }
      }
      be.convAlgorithm = "direct";
      const row = {
        ...L, pass, shape: `${pass} ${C}→${O} ${H}×${H}`, error,
        ...(timing ? {
          medianMs: { direct: median(ms.direct), winograd: median(ms.winograd) },
          speedup: median(ms.direct) / median(ms.winograd),
          ms,
        } : {}),
      };
      log(`${row.shape} N=${N}: err ${Object.entries(error).map(([a, e]) => `${a} ${e.maxScaled.toFixed(2)}ε`).join(", ")}` +
        (timing ? `; ms direct ${median(ms.direct).toFixed(1)} winograd ${median(ms.winograd).toFixed(1)} (×${(median(ms.direct) / median(ms.winograd)).toFixed(2)})` : ""));
      rows.push(row);
    }
    [x, w, dy, y, dx, dw].forEach((b) => be.free(b));
  }
  console.log(JSON.stringify({ bench: "winograd", threads, kernels, repeats, checkedImages: CHECKED_IMAGES, interleaved: true, layers: rows }, null, 1));
}

/**
 * `--step`: whole training steps (bench/throughput.ts's: ResNet-20 at batch 64, ResNet-18 with
 * the CIFAR stem at batch 32) on the default kernel build, under each algorithm and at each
 * thread count of `--threads` (a list here), interleaved step by step (the orders alternate
 * round by round; a thread-count switch is followed by one untimed step), medians.
 */
async function steps(): Promise<void> {
  installNodeThreads();
  enableNodeRelaxedSimd();
  const kernels = await rg.setCpuKernels("auto"); // the default build (relaxed where relaxed_madd is fused)
  const threadCounts = list("threads", "1").map(Number);
  const algorithms = list("algorithms", "direct,auto,winograd") as rg.ConvAlgorithm[];
  const models = list("models", "resnet20,resnet18");
  const before = rg.getConvAlgorithm();
  const rows: unknown[] = [];
  for (const [name, batch] of ([["resnet20", 64], ["resnet18", 32]] as const).filter(([m]) => models.includes(m))) {
    const { step, dispose } = trainingStep(name, batch);
    const ms = new Map<string, number[]>();
    const key = (t: number, a: string) => `${t} ${a}`;
    for (const t of threadCounts) { // warm-up: every kernel tiers up and every scratch grows once
      await rg.setThreads(t);
      for (const a of algorithms) {
        rg.setConvAlgorithm(a);
        step();
        step();
        ms.set(key(t, a), []);
      }
    }
    for (let r = 0; r < repeats; r++) {
      for (const t of r % 2 === 0 ? threadCounts : [...threadCounts].reverse()) {
        if (threadCounts.length > 1) {
          await rg.setThreads(t);
          step();
        }
        for (const a of r % 2 === 0 ? algorithms : [...algorithms].reverse()) {
          rg.setConvAlgorithm(a);
          const t0 = performance.now();
          step();
          ms.get(key(t, a))!.push(performance.now() - t0);
        }
      }
    }
    rg.setConvAlgorithm(before);
    await rg.setThreads(1);
    dispose();
    for (const t of threadCounts) {
      const medians = Object.fromEntries(algorithms.map((a) => [a, median(ms.get(key(t, a))!)]));
      log(`${name} batch ${batch}, ${kernels} kernels, ${t} thread(s): step ms ${algorithms.map((a) => `${a} ${medians[a].toFixed(0)}`).join(", ")}` +
        (medians.direct ? `; speed-up over direct ${algorithms.filter((a) => a !== "direct").map((a) => `${a} ${(medians.direct / medians[a]).toFixed(2)}×`).join(", ")}` : ""));
      const speedups = Object.fromEntries(algorithms.filter((a) => a !== "direct").map((a) => [a, medians.direct / medians[a]]));
      rows.push({ model: name, batch, threads: t, medianMs: medians, speedupOverDirect: speedups, ms: Object.fromEntries(algorithms.map((a) => [a, ms.get(key(t, a))])) });
    }
  }
  console.log(JSON.stringify({ bench: "winograd-step", kernels, repeats, interleaved: true, steps: rows }, null, 1));
}

if (process.argv.includes("--step")) await steps();
else await main();
