// The build: AssemblyScript kernels → build/kernels.wasm (+ an embedded base64 module),
// then esbuild bundles the library (dist/retrograd.mjs, platform-neutral ESM, no Node
// built-ins), the Node CLI, the bench (build/bench.mjs), the PowerGrad experiment
// (build/powergrad.mjs), the optimiser comparison (build/optimisers.mjs), the Winograd A/B
// (build/winograd.mjs), the per-operation step profile (build/step_profile.mjs), the runtimes'
// kernel A/B (build/runtime_kernels.mjs) and step series (build/step_series.mjs), the 2-thread
// ceiling (build/parallel_ceiling.mjs) and the worker hand-off cost (build/thread_wake.mjs),
// the bench module of `retrograd bench` (dist/bench.mjs), each test file for Node
// (build/test/*.mjs), the
// browser demo (dist/web/) and the cross-runtime run (build/support/run20.mjs); and the type
// declarations of the public API (dist/types/, scripts/build_types.mjs) that the npm package
// ships.
// `npm run build` runs it; `npm test` runs it first. `node esbuild.config.mjs --cli` builds only
// what the `retrograd` command runs (the kernels, dist/cli.mjs, dist/retrograd-onnx.mjs and
// dist/bench.mjs): `npm run train` uses it, so the main job does not wait for the tests' and the
// benchmarks' bundles and the type declarations. The kernels are compiled only when their
// sources changed (scripts/build_wasm.mjs).
import * as esbuild from "esbuild";
import { readdir } from "node:fs/promises";
import { buildWasm } from "./scripts/build_wasm.mjs";
import { buildTypes } from "./scripts/build_types.mjs";

// TensorFlow.js and jax-js are dev dependencies of the bench's --vs-tfjs and --vs-jaxjs only:
// resolved from node_modules, never bundled.
const common = { bundle: true, format: "esm", target: "es2022", logLevel: "warning", sourcemap: false, external: ["@tensorflow/*", "@jax-js/*"] };

/**
 * Resolves a bundle's import of the ONNX encoder to dist/retrograd-onnx.mjs, `path` being that
 * file relative to the bundle, so the encoder (with the protobuf library) is built once and
 * loaded only by a program that exports.
 */
const onnxEncoderAt = (path) => ({
  name: "onnx-encoder-at",
  setup(build) {
    build.onResolve({ filter: /\/onnx_encode\.ts$/ }, () => ({ path, external: true }));
  },
});

/** The bundles the `retrograd` command loads: the CLI, the ONNX encoder beside it, the bench module. */
function cliBundles() {
  return [
    esbuild.build({ ...common, entryPoints: ["src/io/onnx_encode.ts"], outfile: "dist/retrograd-onnx.mjs", platform: "neutral" }),
    esbuild.build({
      ...common, entryPoints: ["cli/main.ts"], outfile: "dist/cli.mjs", platform: "node", plugins: [onnxEncoderAt("./retrograd-onnx.mjs")],
      banner: { js: "#!/usr/bin/env node" },
    }),
    // `retrograd bench` loads this beside the CLI bundle, which does not contain the benchmarks.
    esbuild.build({ ...common, entryPoints: ["bench/throughput.ts"], outfile: "dist/bench.mjs", platform: "node" }),
  ];
}

/** Only what the `retrograd` command runs (`--cli`). */
export async function buildCli() {
  await buildWasm();
  await Promise.all(cliBundles());
}

export async function build() {
  await buildWasm();
  const tests = (await readdir("test")).filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  const bundles = Promise.all([
    ...cliBundles(),
    // The library, one self-contained file; the ONNX encoder (with the protobuf library) is a
    // second one beside it, which toOnnx's dynamic import loads only when a program exports
    // (the CLI and the demo's bundles load the same file).
    esbuild.build({
      ...common, entryPoints: ["src/mod.ts"], outfile: "dist/retrograd.mjs", platform: "neutral", plugins: [onnxEncoderAt("./retrograd-onnx.mjs")],
    }),
    esbuild.build({ ...common, entryPoints: ["bench/main.ts"], outfile: "build/bench.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/powergrad.ts"], outfile: "build/powergrad.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/optimisers.ts"], outfile: "build/optimisers.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/winograd.ts"], outfile: "build/winograd.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/step_profile.ts"], outfile: "build/step_profile.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/conv_profile.ts"], outfile: "build/conv_profile.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/kernel_hashes.ts"], outfile: "build/kernel_hashes.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/runtime_kernels.ts"], outfile: "build/runtime_kernels.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/step_series.ts"], outfile: "build/step_series.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/parallel_ceiling.ts"], outfile: "build/parallel_ceiling.mjs", platform: "node" }),
    esbuild.build({ ...common, entryPoints: ["bench/thread_wake.ts"], outfile: "build/thread_wake.mjs", platform: "node" }),
    esbuild.build({
      ...common, entryPoints: tests, outdir: "build/test", outExtension: { ".js": ".mjs" }, platform: "node",
      // uvu and friends stay external: they are resolved from node_modules at run time.
      packages: "external",
    }),
    // The browser demo (web/, served by scripts/serve.mjs): the page and its training worker.
    esbuild.build({
      ...common, entryPoints: ["web/app.ts", "web/worker.ts"], outdir: "dist/web", outExtension: { ".js": ".mjs" }, platform: "browser",
      plugins: [onnxEncoderAt("../retrograd-onnx.mjs")],
    }),
    // The cross-runtime determinism run, one self-contained file for Node, Deno workers and Chromium.
    esbuild.build({ ...common, entryPoints: ["test/support/run20.ts"], outfile: "build/support/run20.mjs", platform: "neutral" }),
  ]);
  buildTypes(); // synchronous, while esbuild's own process bundles
  await bundles;
}

if (import.meta.url === `file://${process.argv[1]}`) await (process.argv.includes("--cli") ? buildCli() : build());
