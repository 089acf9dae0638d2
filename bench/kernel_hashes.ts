/**
 * Hashes of what the CPU kernels compute, to check that a change meant to keep the bits keeps
 * them. The Winograd passes (forward, input gradient, weight gradient) run on eleven shapes:
 * narrow, tall, wide, odd-sized, 3 to 512 channels. ResNet-20 and ResNet-18 then take three
 * training steps each, from one seed, under the default algorithm. All of this runs with the
 * plain and relaxed builds at 1 and 2 threads. Run it with the builds before and after and
 * compare the outputs:
 *
 *   node esbuild.config.mjs && node build/kernel_hashes.mjs > after.txt   # and in a worktree of the base
 *   diff before.txt after.txt
 *
 * One line per shape or model: the first 12 hex digits of the SHA-1 of the output bytes.
 */
import { createHash } from "node:crypto";
import * as rg from "../src/mod.ts";
import type { CpuBackend } from "../src/backend/cpu/index.ts";
import type { ConvGeometry } from "../src/backend/backend.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { trainingStep } from "./throughput.ts";

const hex = (bytes: Uint8Array | string) => createHash("sha1").update(bytes).digest("hex").slice(0, 12);
const floats = (a: Float32Array) => hex(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
/** N, C, O, H of 3×3 stride-1 layers on H×H planes. */
const SHAPES = [[4, 3, 16, 32], [4, 16, 16, 32], [6, 32, 32, 16], [8, 64, 64, 8], [5, 16, 16, 28], [5, 64, 64, 7],
  [3, 512, 512, 4], [3, 256, 256, 8], [2, 8, 24, 5], [3, 24, 8, 13], [2, 16, 16, 40]];

installNodeThreads();
enableNodeRelaxedSimd();
for (const kernels of ["plain", "relaxed"] as const) {
  await rg.setCpuKernels(kernels);
  for (const threads of [1, 2]) {
    await rg.setThreads(threads);
    const be = rg.getBackend("cpu") as CpuBackend;
    console.log(`${kernels} kernels, ${threads} thread(s)`);
    for (const [N, C, O, H] of SHAPES) {
      const g: ConvGeometry = { N, C, H, W: H, O, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, DH: 1, DW: 1, G: 1, OH: H, OW: H };
      const filled = (n: number, phase: number) => {
        const b = be.alloc(n);
        be.write(b, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase)));
        return b;
      };
      const x = filled(N * C * H * H, 1), w = filled(O * C * 9, 2), dy = filled(N * O * H * H, 3);
      const y = be.alloc(N * O * H * H), dx = be.alloc(N * C * H * H), dw = be.alloc(O * C * 9);
      be.convAlgorithm = "winograd";
      be.conv2dForward(x, w, y, g);
      be.conv2dBackwardInput(dy, w, dx, g);
      be.conv2dBackwardWeight(dy, x, dw, g);
      be.convAlgorithm = "auto";
      console.log(`  ${N}×${C}→${O} ${H}×${H}: ${floats(be.readSync(y))} ${floats(be.readSync(dx))} ${floats(be.readSync(dw))}`);
      [x, w, dy, y, dx, dw].forEach((b) => be.free(b));
    }
    for (const [name, batch] of [["resnet20", 16], ["resnet18", 4]] as const) {
      rg.manualSeed(7);
      const { net, step, dispose } = trainingStep(name, batch);
      for (let i = 0; i < 3; i++) step();
      console.log(`  ${name} batch ${batch}, 3 steps: ${hex(net.parameters().map((p) => floats(p.dataSync() as Float32Array)).join(""))}`);
      dispose();
    }
  }
}
await rg.setThreads(1);
