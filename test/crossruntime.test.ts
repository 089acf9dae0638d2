/**
 * Cross-runtime determinism: test/support/run20.ts (seeded ResNet-20 on fixed synthetic data,
 * 20 SGD steps on the CPU backend) must give bit-identical step losses and the same SHA-256
 * over the final state dict under
 *   - Node (the esbuild bundle build/support/run20.mjs),
 *   - Deno with no permissions at all (`deno run test/support/run20.ts`, the sources),
 *   - a plain Deno module worker, no permissions (test/support/run20_worker.ts),
 *   - headless Chromium, in the page and in a module worker.
 * each on the default kernels, which on this machine (x86-64 with FMA3) are the relaxed-SIMD
 * build: every runtime must report the same build and probe result, and the build must be the
 * relaxed one wherever this process's probe finds relaxed_madd fused; where it is, each runtime
 * also runs on the plain build, which must agree too and differ from the relaxed bits (so the
 * relaxed run really rounded once). Node 20 gets relaxed SIMD's V8 flag on its command line.
 * Exact equality, never a tolerance: a fused multiply-add has one correct result, every sum
 * has a fixed order, and the random streams are counter-based. The cold-start and memory
 * figures each runtime reports are printed (docs/edge.md quotes them). It spawns the other
 * runtimes itself, so it runs once, from the Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chromiumSkipReason, launchChromium, serve } from "./support/browser.ts";
import type { Run20Bits, Run20Result } from "./support/run20.ts";
import { probeRelaxedMadd } from "../src/backend/cpu/madd_probe.ts";
import { enableNodeRelaxedSimd, nodeRelaxedSimdFlags } from "../cli/node_wasm.ts";

const isDeno = "Deno" in globalThis;
const skipReason = isDeno ? "runs from the Node pass (it spawns Deno and Chromium itself)" : "";
if (skipReason) console.log(`crossruntime.test: skipped: ${skipReason}`);
const nodeTest = skipReason ? test.skip : test;
const chromiumReason = chromiumSkipReason();
if (!skipReason && chromiumReason) console.log(`crossruntime.test: Chromium runs skipped: ${chromiumReason}`);
const chromiumTest = chromiumReason ? test.skip : test;

const BUNDLE = "build/support/run20.mjs";
const DENO = "node_modules/.bin/deno";

interface Result extends Run20Result {
  workerRoundTripMs?: number;
  processRssBytes?: number;
}

const results = new Map<string, Result & { wallMs?: number }>();

function spawnRun(label: string, cmd: string, args: string[], input?: string): void {
  const started = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", input, timeout: 300_000, env: { ...process.env, NO_COLOR: "1" } });
  const wallMs = performance.now() - started;
  assert.is(r.status, 0, `${label} (${cmd} ${args.join(" ")}) failed:\n${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop()!;
  results.set(label, { ...JSON.parse(line), wallMs });
}

function assertSameBits(label: string, other: Run20Bits, node: Run20Bits): void {
  assert.is(other.losses.length, 20);
  for (let i = 0; i < 20; i++) {
    // Object.is: bit-for-bit on the float32 value (each loss is a float32 widened to a double).
    assert.ok(Object.is(other.losses[i], node.losses[i]), `${label} step ${i + 1}: loss ${other.losses[i]} ≠ node ${node.losses[i]}`);
  }
  assert.is(other.weightsSha256, node.weightsSha256, `${label}: weights hash`);
}

function assertSameAsNode(label: string): void {
  const node = results.get("node")!;
  const other = results.get(label)!;
  assert.ok(node, "the Node run came first");
  assert.equal([other.kernels, other.relaxedMadd], [node.kernels, node.relaxedMadd], `${label}: default kernels and probe`);
  assertSameBits(`${label} (${other.kernels} kernels)`, other, node);
  if (node.plain) assertSameBits(`${label} (plain kernels)`, other.plain!, node.plain);
}

nodeTest("Node: 20 seeded steps learn and report a weights hash, on the relaxed build where relaxed_madd is fused", () => {
  assert.ok(existsSync(BUNDLE), `${BUNDLE} is built by esbuild.config.mjs`);
  spawnRun("node", "node", [...nodeRelaxedSimdFlags(), BUNDLE]);
  const node = results.get("node")!;
  enableNodeRelaxedSimd();
  const here = probeRelaxedMadd();
  assert.equal([node.relaxedMadd, node.kernels], [here, here === "fused" ? "relaxed" : "plain"], "the default follows the probe");
  if (node.kernels === "relaxed") {
    assert.ok(node.plain, "the plain build ran too");
    assert.is.not(node.plain!.weightsSha256, node.weightsSha256, "fused rounding reaches the weights");
  }
  assert.is(node.losses.length, 20);
  assert.ok(node.losses.every((l) => Math.fround(l) === l), "losses are float32 values");
  assert.ok(node.losses.slice(-3).reduce((a, b) => a + b) < node.losses.slice(0, 3).reduce((a, b) => a + b), "loss fell");
  assert.match(node.weightsSha256, /^[0-9a-f]{64}$/);
});

nodeTest("Deno with no permissions gives the same losses and weights", () => {
  spawnRun("deno (no permissions)", DENO, ["run", "test/support/run20.ts"]);
  assertSameAsNode("deno (no permissions)");
});

nodeTest("a Deno module worker with no permissions gives the same losses and weights", () => {
  spawnRun("deno worker (no permissions)", DENO, ["run", "test/support/run20_worker.ts"], readFileSync(BUNDLE, "utf8"));
  assertSameAsNode("deno worker (no permissions)");
});

chromiumTest("headless Chromium, in a page and in a module worker, gives the same losses and weights", async () => {
  const server = await serve({ "/support/": "build/support", "/": "web" });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const printed: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => (m.type() === "error" ? errors.push(m.text()) : printed.push(m.text())));
    await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
    await page.goto(`${server.url}style.css`); // any same-origin document: a secure context for crypto.subtle
    await page.evaluate((url) => import(url), "/support/run20.mjs");
    const line = printed.find((p) => p.startsWith("{\"kernels\""));
    assert.ok(line, `the page printed a result (errors: ${errors.join("; ")})`);
    results.set("chromium page", JSON.parse(line!));
    assertSameAsNode("chromium page");

    const fromWorker = await page.evaluate((url) =>
      new Promise((resolve, reject) => {
        const w = new Worker(url, { type: "module" });
        w.onmessage = (e) => (resolve(e.data), w.terminate());
        w.onerror = (e) => reject(new Error(e.message));
      }), "/support/run20.mjs");
    results.set("chromium worker", fromWorker as Result);
    assertSameAsNode("chromium worker");
    assert.equal(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});

nodeTest("figures: cold start (time origin → first finished step) and memory", () => {
  const mb = (b: number | null | undefined) => (b == null ? "–" : `${(b / 2 ** 20).toFixed(1)} MiB`);
  const ms = (v: number | undefined) => (v === undefined ? "–" : `${v.toFixed(0)} ms`);
  for (const [label, r] of results) {
    console.log(
      `crossruntime: ${label.padEnd(28)} ${r.kernels} kernels (relaxed_madd ${r.relaxedMadd}), module start ${ms(r.moduleStartMs)}, first step ${ms(r.firstStepMs)}, ` +
        `20 steps ${ms(r.totalMs)}, backend peak ${mb(r.peakBytes)}, RSS ${mb(r.processRssBytes ?? r.rssBytes)}` +
        (r.wallMs ? `, process wall ${ms(r.wallMs)}` : ""),
    );
  }
  assert.ok(results.size >= 3);
});

test.run();
