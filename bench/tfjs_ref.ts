/**
 * TensorFlow.js reference for bench/throughput.ts: sgemm n³ on TF.js's wasm backend (XNNPACK,
 * SIMD), one thread, timed like ours (a second of warm-up, median of repeats; dataSync waits
 * for the result). A dev dependency of the bench only; retrograd never imports TF.js.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function tfjsSgemm(sizes: readonly number[], repeats: number): Promise<{ version: string; sgemmGflops: Record<string, number> }> {
  const tf = await import("@tensorflow/tfjs-core");
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  // The backend finds its .wasm files next to its own entry point; one thread, as the issue asks.
  const dir = dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm")) + "/";
  wasm.setWasmPaths(dir);
  wasm.setThreadsCount(1);
  await tf.setBackend("wasm");
  await tf.ready();
  const sgemmGflops: Record<string, number> = {};
  for (const n of sizes) {
    const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
    const run = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    // Warm up as bench/throughput.ts does: at least a second, so the engine's top tier runs.
    const warm = performance.now();
    for (let calls = 0; calls < 2 || performance.now() - warm < 1000; calls++) run();
    const times: number[] = [];
    for (let i = 0; i < (n <= 256 ? 20 : repeats); i++) {
      const t0 = performance.now();
      run();
      times.push((performance.now() - t0) / 1000);
    }
    sgemmGflops[String(n)] = (2 * n ** 3) / median(times) / 1e9;
    a.dispose();
    b.dispose();
  }
  return { version: tf.version_core, sgemmGflops };
}
