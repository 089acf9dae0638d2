/**
 * The relaxed_madd probe (src/backend/cpu/madd_probe.ts) and the default kernel choice it
 * drives (src/backend/cpu/index.ts). In this process: the probe says "fused" where the CPU has
 * a fused multiply-add that V8 uses (x86-64 with FMA3 in /proc/cpuinfo, or ARM64), and then
 * "auto" takes the relaxed build; injected evaluations classify as unfused (two roundings),
 * other (an emulation in double precision) and unsupported. In child engines (Node and Deno
 * with V8's `--no-enable-fma3`, which makes V8 lower relaxed_madd to a multiply and an add,
 * as on a CPU without FMA3): the probe says "unfused", the default is the plain build, and
 * a forced relaxed build then gives exactly the plain build's bits, while on the fused engine
 * it gives other bits. The child runs go from the Node pass only.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as rg from "../src/mod.ts";
import { classifyMadd, evaluateRelaxedMadd, PROBE_LANES, probeRelaxedMadd } from "../src/backend/cpu/madd_probe.ts";
import { enableNodeRelaxedSimd, nodeRelaxedSimdFlags } from "../cli/node_wasm.ts";

enableNodeRelaxedSimd();
const isDeno = "Deno" in globalThis;
const nodeTest = isDeno ? test.skip : test;

/** Does V8 fuse relaxed_madd on this CPU? x86-64: the fma flag (FMA3); ARM64: always (fmla). */
function cpuHasFma(): boolean {
  const arch = isDeno ? (globalThis as unknown as { Deno: { build: { arch: string } } }).Deno.build.arch : process.arch;
  if (arch === "arm64" || arch === "aarch64") return true;
  const flags = readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "";
  return flags.split(/\s+/).includes("fma");
}

/** relaxed_madd computed in JavaScript: `round` applied after the multiply and after the add. */
const lanesComputed = (round: (x: number) => number) => () =>
  Float32Array.from(PROBE_LANES.a, (a, i) => round(round(a * PROBE_LANES.b[i]) + PROBE_LANES.c[i]));

test("the probe lanes are float32 values", () => {
  for (const v of [...PROBE_LANES.a, ...PROBE_LANES.b, ...PROBE_LANES.c, ...PROBE_LANES.fused, ...PROBE_LANES.unfused]) {
    assert.is(Math.fround(v), v, `${v} is not a float32`);
  }
});

test("this engine: the probe finds relaxed_madd fused where the CPU has FMA, and auto takes the relaxed build", async () => {
  const lanes = evaluateRelaxedMadd();
  assert.ok(lanes, "relaxed SIMD is available (Deno; Node 20 with enableNodeRelaxedSimd)");
  const expected = cpuHasFma() ? "fused" : "unfused";
  assert.is(probeRelaxedMadd(), expected, `lanes ${Array.from(lanes!)}`);
  assert.is(await rg.setCpuKernels("auto"), expected === "fused" ? "relaxed" : "plain");
  assert.is(rg.relaxedMaddRounding(), expected);
  assert.is(rg.getCpuKernels(), expected === "fused" ? "relaxed" : "plain");
});

test("injected evaluations: two roundings are unfused, double-precision emulation is other, none is unsupported", () => {
  assert.is(probeRelaxedMadd(lanesComputed(Math.fround)), "unfused");
  // Multiply and add in double, round once to float: right on three lanes, wrong on lane 1.
  const doubleEmulation = () => Float32Array.from(PROBE_LANES.a, (a, i) => a * PROBE_LANES.b[i] + PROBE_LANES.c[i]);
  assert.is(probeRelaxedMadd(doubleEmulation), "other");
  assert.is(probeRelaxedMadd(() => null), "unsupported");
  assert.is(classifyMadd(Float32Array.from(PROBE_LANES.fused)), "fused");
  // One lane off by one bit is not fused.
  const almost = Float32Array.from(PROBE_LANES.fused);
  new Uint32Array(almost.buffer)[3] ^= 1;
  assert.is(classifyMadd(almost), "other");
});

test("explicit choices win over the probe; a bad one is refused, naming it", async () => {
  assert.is(await rg.setCpuKernels("plain"), "plain");
  assert.is(rg.isDeterministic(), true);
  assert.is(await rg.setCpuKernels("relaxed"), "relaxed");
  assert.is(await rg.setDeterministic(true), true);
  assert.is(rg.getCpuKernels(), "plain");
  try {
    await rg.setCpuKernels("fast" as rg.CpuKernelChoice);
    assert.unreachable("refused");
  } catch (e) {
    assert.instance(e, rg.ValueError);
    assert.match((e as Error).message, /"fast" is not one of "auto", "plain", "relaxed"/);
  }
  await rg.setCpuKernels("auto");
});

/** The child program: the default's probe and build, then a seeded matmul's bits on each build. */
const CHILD = `
const rg = await import(${JSON.stringify(pathToFileURL("dist/retrograd.mjs").href)});
const rounding = rg.relaxedMaddRounding(), kernels = rg.getCpuKernels();
const bits = async (k) => {
  const used = await rg.setCpuKernels(k);
  rg.manualSeed(5);
  const y = rg.matmul(rg.randn([40, 300]), rg.randn([300, 24])).dataSync();
  const out = new Uint32Array(y.buffer, y.byteOffset, y.length);
  let h = 2166136261;
  for (const w of out) h = Math.imul(h ^ w, 16777619) >>> 0;
  return used + ":" + h.toString(16);
};
console.log(JSON.stringify({ rounding, kernels, plain: await bits("plain"), relaxed: await bits("relaxed") }));
`;

interface Child { rounding: string; kernels: string; plain: string; relaxed: string }

function child(label: string, cmd: string, args: string[]): Child {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, `${label}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

nodeTest("child engines: without FMA the default is plain, and a forced relaxed build gives the plain bits", () => {
  assert.ok(existsSync("dist/retrograd.mjs"), "dist/retrograd.mjs is built by esbuild.config.mjs");
  const deno = "node_modules/.bin/deno";
  const node = (v8: string[]) => child(`node ${v8.join(" ")}`, "node", [...nodeRelaxedSimdFlags(), ...v8, "--input-type=module", "-e", CHILD]);
  const denoRun = (v8: string[]) => child(`deno ${v8.join(" ")}`, deno, ["eval", "--quiet", ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []), CHILD]);
  const fma = cpuHasFma();
  const fused = [node([]), denoRun([])];
  for (const f of fused) {
    assert.equal([f.rounding, f.kernels], fma ? ["fused", "relaxed"] : ["unfused", "plain"]);
    assert.ok(f.plain.startsWith("plain:") && f.relaxed.startsWith("relaxed:"));
    if (fma) assert.is.not(f.relaxed.slice(8), f.plain.slice(6), "fused: one rounding changes low bits");
  }
  assert.is(fused[1].relaxed, fused[0].relaxed, "Node and Deno: the same relaxed bits");
  assert.is(fused[1].plain, fused[0].plain, "Node and Deno: the same plain bits");
  if (process.arch === "x64") { // elsewhere (ARM64) V8 fuses whatever the flag says
    for (const u of [node(["--no-enable-fma3"]), denoRun(["--no-enable-fma3"])]) {
      assert.equal([u.rounding, u.kernels], ["unfused", "plain"]);
      assert.is(u.plain, fused[0].plain, "the plain build does not depend on FMA");
      // Unfused relaxed_madd is V8's multiply then add: exactly the plain build's arithmetic.
      assert.is(u.relaxed.slice(8), u.plain.slice(6), "unfused relaxed = plain bits");
    }
  }
  // Node 20 without its flag has no relaxed SIMD: plain by default, and plain when relaxed is asked for.
  if (nodeRelaxedSimdFlags().length > 0) {
    const bare = child("node without relaxed SIMD", "node", ["--input-type=module", "-e", CHILD]);
    assert.equal([bare.rounding, bare.kernels, bare.relaxed], ["unsupported", "plain", bare.plain]);
  }
});

test.run();
