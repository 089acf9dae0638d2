/**
 * Every WGSL kernel of gpu/ compiles under Chromium's WebGPU (its Tint compiler), as under
 * Deno's (naga, where test/webgpu*.test.ts run them). The two compilers are strict in
 * different places: Tint rejects a NaN or infinite constant such as
 * `bitcast<f32>(0x7fc00000u)`, which naga accepts; and the browser test's training reaches
 * only the kernels its model uses. Shader modules only: making the pipelines too (SwiftShader
 * compiling every kernel to machine code) took a minute here, for errors naga reports as well.
 * It drives Chromium through playwright-core, so it runs from the Node pass; where Chromium
 * offers no WebGPU adapter it says so and checks nothing.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Browser } from "playwright-core";
import { type KernelSpec, shaderSource } from "../gpu/kernel.ts";
import * as elementwise from "../gpu/kernels/elementwise.ts";
import * as gemm from "../gpu/kernels/gemm.ts";
import * as jacobi from "../gpu/kernels/jacobi.ts";
import * as norm from "../gpu/kernels/norm.ts";
import * as pool from "../gpu/kernels/pool.ts";
import * as reduce from "../gpu/kernels/reduce.ts";
import * as reduceAxis from "../gpu/kernels/reduce_axis.ts";
import * as unary from "../gpu/kernels/unary.ts";
import { chromiumSkipReason, launchChromium, serve, type Served } from "./support/browser.ts";

const skipReason = chromiumSkipReason();
if (skipReason) console.log(`wgsl_chromium.test: skipped: ${skipReason}`);

function isSpec(v: unknown): v is KernelSpec {
  return typeof v === "object" && v !== null && typeof (v as KernelSpec).key === "string" && typeof (v as KernelSpec).code === "string";
}

function isGemmShape(v: unknown): v is gemm.GemmShape {
  return typeof v === "object" && v !== null && typeof (v as gemm.GemmShape).access === "string";
}

/**
 * The kernels a module exports: specs, the specs inside families, and each GEMM-shaped
 * kernel (the GEMM and the convolution passes) on every tile.
 */
function kernelsOf(module: Record<string, unknown>): KernelSpec[] {
  const tiles = Object.keys(gemm.TILES) as gemm.TileName[];
  return Object.values(module).flatMap((v) => isSpec(v) ? [v]
    : isGemmShape(v) ? tiles.map((t) => gemm.gemmKernel(v, t))
    : typeof v === "object" && v !== null ? Object.values(v).filter(isSpec) : []);
}

const kernels = [elementwise, gemm, jacobi, norm, pool, reduce, reduceAxis, unary].flatMap((m) => kernelsOf(m as Record<string, unknown>));

(skipReason ? test.skip : test)("every WGSL kernel compiles under Chromium's WebGPU", async () => {
  assert.ok(kernels.length >= 50, `found ${kernels.length} kernels`);
  assert.ok(kernels.some((k) => k.key === "conv2d_backward_input_16x256"), "the convolution kernels are among them");
  let browser: Browser | undefined;
  let server: Served | undefined;
  try {
    server = await serve();
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(server.url);
    const shaders = kernels.map((k) => ({ key: k.key, code: shaderSource(k) }));
    const errors = await page.evaluate(async (shaders) => {
      const adapter = await (navigator as { gpu?: GPU }).gpu?.requestAdapter();
      if (!adapter) return null;
      const device = await adapter.requestDevice();
      const found: string[] = [];
      for (const s of shaders) {
        device.pushErrorScope("validation");
        const module = device.createShaderModule({ label: s.key, code: s.code });
        for (const m of (await module.getCompilationInfo()).messages) {
          if (m.type === "error") found.push(`${s.key}:${m.lineNum}:${m.linePos}: ${m.message}`);
        }
        const error = await device.popErrorScope();
        if (error) found.push(`${s.key}: ${error.message}`);
      }
      device.destroy();
      return found;
    }, shaders);
    if (errors === null) {
      console.log("wgsl_chromium.test: no WebGPU adapter in this Chromium; nothing was compiled");
      return;
    }
    assert.equal(errors, [], errors.join("\n"));
    console.log(`wgsl_chromium.test: ${kernels.length} kernels compiled under Chromium's WebGPU`);
  } finally {
    await browser?.close();
    await server?.close();
  }
});

test.run();
