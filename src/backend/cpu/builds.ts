/**
 * The kernel builds a CPU backend can run (scripts/build_wasm.mjs makes them; they travel
 * inside the module graph as base64, so loading needs no file system, fetch or permission):
 * the plain SIMD128 build, which gives the same bits on every runtime and machine, and the
 * relaxed-SIMD build (f32x4.relaxed_madd in the gemm and convolution micro-kernels: the same
 * bits wherever the engine fuses it, see madd_probe.ts), each for a private memory and for a
 * shared one (threads). The plain build is compiled at import (top-level await); the others
 * when first needed (index.ts asks for the relaxed one at import where it is the default).
 */
import { kernelsWasmBase64 } from "../../../build/kernels_wasm.ts";

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The kernel builds a CpuBackend can run. */
export interface KernelModules {
  plain: WebAssembly.Module;
  /** The shared-memory builds, compiled on first use (null: no threads here). */
  plainShared: () => WebAssembly.Module | null;
  /** The relaxed-SIMD build (null: not compiled yet, or this runtime lacks relaxed SIMD). */
  relaxed: () => WebAssembly.Module | null;
  relaxedShared: () => WebAssembly.Module | null;
}

/** Compile once per process; top-level await keeps `import` the only set-up a user needs. */
const plainModule = await WebAssembly.compile(base64ToBytes(kernelsWasmBase64.plain));

/** Compile `b64` synchronously on first call (null where it fails or shared memory is missing);
 * called only when threads are asked for, never on a browser's main thread, where synchronous
 * compilation of large modules is refused. */
function lazySharedModule(b64: string): () => WebAssembly.Module | null {
  let module: WebAssembly.Module | null | undefined;
  return () => {
    if (module === undefined) {
      module = null;
      if (typeof SharedArrayBuffer === "function") {
        try {
          module = new WebAssembly.Module(base64ToBytes(b64));
        } catch {
          module = null;
        }
      }
    }
    return module;
  };
}

/** The relaxed build, compiled (asynchronously) by the first compileRelaxed(). */
let relaxedModule: WebAssembly.Module | null = null;
let relaxedCompiled: Promise<WebAssembly.Module> | undefined;

/**
 * Compile the relaxed-SIMD build once; null where this runtime cannot validate it. A refusal
 * is not kept: Node 20 accepts relaxed SIMD once its flag is set (cli/node_wasm.ts).
 */
export function compileRelaxed(): Promise<WebAssembly.Module | null> {
  if (relaxedCompiled) return relaxedCompiled;
  const bytes = base64ToBytes(kernelsWasmBase64.relaxed);
  if (!WebAssembly.validate(bytes)) return Promise.resolve(null);
  return (relaxedCompiled = WebAssembly.compile(bytes).then((module) => (relaxedModule = module)));
}

export const kernelModules: KernelModules = {
  plain: plainModule,
  plainShared: lazySharedModule(kernelsWasmBase64.plainShared),
  relaxed: () => relaxedModule,
  relaxedShared: lazySharedModule(kernelsWasmBase64.relaxedShared),
};
