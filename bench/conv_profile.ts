/**
 * Where one convolution pass spends its time, kernel function by kernel function. One pass
 * (forward, input gradient or weight gradient) of one layer shape runs `--repeats` times under
 * one algorithm, with V8's sampling profiler on (node:inspector, in this process). Self time
 * is summed per function and reported per call. The shares come from one process, so they
 * stay comparable while the machine's speed drifts, which timing two builds one after the
 * other does not give. Build with RG_WASM_NAMES=1 so that the kernels keep their names
 * (scripts/build_wasm.mjs); without it they read `wasm-function[i]`. Functions that the
 * compiler inlined count in their caller.
 *
 *   RG_WASM_NAMES=1 node esbuild.config.mjs && node build/conv_profile.mjs --shape 16,16,32,64
 *     [--pass forward|backwardInput|backwardWeight] [--algorithm winograd|direct]
 *     [--repeats 60] [--threads 1] [--kernels auto] > profile.json
 *
 * --shape is C,O,H,N: a 3×3 stride-1 pad-1 convolution of N images, C → O channels, H×H.
 * JSON on stdout (the per-call times and the table); the table on stderr.
 */
import { Session } from "node:inspector/promises";
import * as rg from "../src/mod.ts";
import type { CpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { lcgValues } from "../test/support/conv3x3.ts";
import { log, median, option } from "./bench_args.ts";

type Pass = "forward" | "backwardInput" | "backwardWeight";
interface ProfileNode { id: number; callFrame: { functionName: string; url: string } }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const [C, O, H, N] = option("shape", "16,16,32,64").split(",").map(Number);
const pass = option("pass", "forward") as Pass;
const algorithm = option("algorithm", "winograd") as rg.ConvAlgorithm;
const repeats = Number(option("repeats", "60"));
if (![C, O, H, N].every((v) => Number.isInteger(v) && v > 0)) throw new rg.ValueError(`conv_profile --shape: want C,O,H,N (positive integers), got ${option("shape", "")}`);
if (!["forward", "backwardInput", "backwardWeight"].includes(pass)) throw new rg.ValueError(`conv_profile --pass: want forward, backwardInput or backwardWeight, got ${pass}`);

installNodeThreads();
enableNodeRelaxedSimd();
const kernels = await rg.setCpuKernels(option("kernels", "auto") as rg.CpuKernelChoice);
await rg.setThreads(Number(option("threads", "1")));
const be = rg.getBackend("cpu") as CpuBackend;
const g: ConvGeometry = { N, C, H, W: H, O, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, G: 1, OH: H, OW: H };
const upload = (v: Float32Array) => { const b = be.alloc(v.length); be.write(b, v); return b; };
const x = upload(lcgValues(N * C * H * H, 1)), w = upload(lcgValues(O * C * 9, 2)), dy = upload(lcgValues(N * O * H * H, 3));
const y = be.alloc(N * O * H * H), dx = be.alloc(N * C * H * H), dw = be.alloc(O * C * 9);
be.convAlgorithm = algorithm;
const call = () => pass === "forward" ? be.conv2dForward(x, w, y, g)
  : pass === "backwardInput" ? be.conv2dBackwardInput(dy, w, dx, g) : be.conv2dBackwardWeight(dy, x, dw, g);
for (let i = 0; i < 3; i++) call(); // tier-up and scratch growth, outside the profile

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 100 });
await session.post("Profiler.start");
const ms: number[] = [];
for (let r = 0; r < repeats; r++) {
  const t0 = performance.now();
  call();
  ms.push(performance.now() - t0);
}
const { profile } = await session.post("Profiler.stop") as unknown as { profile: Profile };
session.disconnect();

const names = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || n.callFrame.url || "(anonymous)"]));
const self = new Map<string, number>();
profile.samples.forEach((id, i) => self.set(names.get(id)!, (self.get(names.get(id)!) ?? 0) + profile.timeDeltas[i] / 1000));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const rows = [...self.entries()].filter(([, t]) => t / total >= 0.005).sort((a, b) => b[1] - a[1])
  .map(([fn, t]) => ({ function: fn, msPerCall: t / repeats, share: t / total }));
log(`${pass} ${C}→${O} ${H}×${H} N=${N}, ${algorithm}, ${kernels} kernels: median ${median(ms).toFixed(2)} ms, fastest ${Math.min(...ms).toFixed(2)} ms per call`);
for (const r of rows) log(`${r.msPerCall.toFixed(3).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)} %  ${r.function}`);
console.log(JSON.stringify({ bench: "conv-profile", pass, shape: { C, O, H, N }, algorithm, kernels, repeats, medianMs: median(ms), ms, functions: rows }));
