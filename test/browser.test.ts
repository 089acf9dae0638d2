/**
 * The browser demo end to end in headless Chromium (Debian's, through playwright-core): the
 * served page is cross-origin isolated and loads with no console errors; dist/retrograd.mjs
 * imports in the page (no Node built-ins); the MLP trains on the real Fashion-MNIST, its loss
 * falls and the charts, progress bar and test-image grid fill in; a run stopped and resumed
 * gives exactly the losses of an uninterrupted one, and so does a one-thread run (the CPU
 * backend runs on every core the page offers, in the training worker); the downloaded safetensors has the SHA-256
 * the page shows and loads in Node. Where Chromium offers WebGPU (SwiftShader, a CPU
 * implementation: slow, so 3 small steps) the same run on WebGPU matches the CPU losses to
 * |Δ| ≤ 1e-3 · max(1, |cpu|) (float32, different summation order). A screenshot goes to
 * build/screenshots/browser-after-training.png. Runs are waited for while they make
 * progress, not for a fixed time, so a busy machine makes them slower, never red. It drives
 * another runtime, so it runs once, from the Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { request } from "node:http";
import type { Browser, Page } from "playwright-core";
import * as rg from "../src/mod.ts";
import { chromiumSkipReason, launchChromium, serve, type Served } from "./support/browser.ts";
import { waitForProgress } from "./support/progress_wait.ts";

const DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const skipReason = chromiumSkipReason() ||
  (existsSync(DATA) ? "" : "Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)");
if (skipReason) console.log(`browser.test: skipped: ${skipReason}`);
const browserTest = skipReason ? test.skip : test;

/** A run that shows no progress for this long has failed (however long it takes in all). */
const STALL_MS = 120_000;

let browser: Browser;
let server: Served;
let page: Page;
const problems: string[] = [];

test.before(async () => {
  if (skipReason) return;
  server = await serve();
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1180, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(180_000);
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  await page.goto(server.url);
  await page.waitForFunction(() => (globalThis as any).demo?.phase === "idle");
});

test.after(async () => {
  await browser?.close();
  await server?.close();
});

interface RunOptions {
  model?: string;
  backend?: "cpu" | "webgpu";
  steps: number;
  batch: number;
  evalImages: number;
  /** CPU threads (default: all the page offers). */
  threads?: number;
  /** Press Stop as soon as the page shows this many steps, then Resume. */
  stopAt?: number;
}

/**
 * Wait until `condition` holds in the page for as long as the run makes progress (steps,
 * phase, progress bar or message change): a machine busy with other work slows a run down
 * and must not fail it; a run that stops moving for STALL_MS fails.
 */
function whilePageProgresses(what: string, condition: () => boolean): Promise<void> {
  return waitForProgress({
    what, stallMs: STALL_MS, pollMs: 250,
    done: () => page.evaluate(condition),
    progress: () => page.evaluate(() => {
      const demo = (globalThis as any).demo;
      return [demo.phase, demo.losses.length, document.getElementById("message")?.textContent,
        (document.getElementById("progress") as HTMLProgressElement | null)?.value];
    }),
  });
}

/** Fill in the form, press Train (and Stop/Resume), wait for the end; returns the losses. */
async function train(o: RunOptions): Promise<{ losses: number[]; testAccuracy: number }> {
  await page.selectOption("#model", o.model ?? "mlp");
  await page.selectOption("#backend", o.backend ?? "cpu");
  await page.fill("#steps", String(o.steps));
  await page.fill("#batch", String(o.batch));
  await page.fill("#eval", String(o.evalImages));
  await page.fill("#threads", String(o.threads ?? await page.evaluate(() => (globalThis as any).demo.threads)));
  if (o.stopAt !== undefined) {
    // Stop is pressed by the page itself, in the same task that shows step stopAt: pressed from
    // the test, it could land after the last step on a busy machine (the button is then off).
    await page.evaluate((n) => {
      const observer = new MutationObserver(() => {
        if ((globalThis as any).demo.losses.length < n) return;
        observer.disconnect();
        (document.getElementById("stop") as HTMLButtonElement).click();
      });
      observer.observe(document.getElementById("progress-text")!, { childList: true, characterData: true, subtree: true });
    }, o.stopAt);
  }
  await page.click("#train");
  if (o.stopAt !== undefined) {
    await whilePageProgresses("the run to stop", () => ["stopped", "done", "error"].includes((globalThis as any).demo.phase));
    const stopped = await page.evaluate(() => (globalThis as any).demo);
    assert.is(stopped.phase, "stopped", `Stop pressed at step ${o.stopAt} stopped the run (it ended ${stopped.phase} after ${stopped.losses.length} steps)`);
    assert.ok(stopped.losses.length >= o.stopAt && stopped.losses.length < o.steps, `stopped mid-run, after ${stopped.losses.length} steps`);
    assert.ok(await page.isEnabled("#resume"), "Resume is enabled after Stop");
    await page.click("#resume");
  }
  await whilePageProgresses("the run to end", () => ["done", "error"].includes((globalThis as any).demo.phase));
  const state = await page.evaluate(() => (globalThis as any).demo);
  assert.is(state.phase, "done", `run ended in ${state.phase}: ${await page.textContent("#message")}`);
  return { losses: state.losses, testAccuracy: state.testAccuracy };
}

/** Pixels of the loss chart close to the train series' colour (#0969da). */
function seriesPixels(): Promise<number> {
  return page.evaluate(() => {
    const canvas = document.getElementById("loss-chart") as HTMLCanvasElement;
    // Read a copy, so the page's own canvas is never read back (Chromium warns on repeated reads).
    const copy = document.createElement("canvas");
    [copy.width, copy.height] = [canvas.width, canvas.height];
    const g = copy.getContext("2d", { willReadFrequently: true })!;
    g.drawImage(canvas, 0, 0);
    const d = g.getImageData(0, 0, copy.width, copy.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 9) + Math.abs(d[i + 1] - 105) + Math.abs(d[i + 2] - 218) < 60 && d[i + 3] > 200) n++;
    return n;
  });
}

/** A raw GET (no URL normalisation, so "../" reaches the server as sent): status and headers. */
function rawGet(path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port: server.port, path }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers }));
    }).on("error", reject).end();
  });
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
let cpuLosses: number[] = [];

browserTest("scripts/serve.mjs: isolation headers on every file, nothing outside its roots", async () => {
  const ok = await rawGet("/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  assert.is(ok.status, 200);
  assert.is(ok.headers["cross-origin-opener-policy"], "same-origin");
  assert.is(ok.headers["cross-origin-embedder-policy"], "require-corp");
  for (const path of ["/../package.json", "/dist/../package.json", "/dist/..%2fpackage.json", "/%2e%2e/%2e%2e/etc/passwd",
    "/datasets/../../../etc/passwd", "/datasets/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd", "/datasets/", "/dist"]) {
    assert.is((await rawGet(path)).status, 404, path);
  }
});

browserTest("the page is cross-origin isolated, says what computes, and dist/retrograd.mjs imports in it", async () => {
  const bundle = readFileSync("dist/retrograd.mjs", "utf8");
  assert.not.match(bundle, /from\s*["']node:|require\(["']|import\(["']node:/, "the library bundle names no Node built-in");
  const probe = await page.evaluate(async (url) => {
    const rg = await import(url);
    const y = rg.matmul(rg.tensor([1, 2, 3, 4], [2, 2]), rg.tensor([1, 0, 0, 1], [2, 2]));
    return { isolated: globalThis.crossOriginIsolated, values: Array.from(await y.data() as Float32Array) };
  }, "/dist/retrograd.mjs");
  assert.ok(probe.isolated, "crossOriginIsolated (COOP/COEP headers from scripts/serve.mjs)");
  assert.equal(probe.values, [1, 2, 3, 4]);
  const status = (await page.textContent("#status"))!;
  assert.match(status, /^Backend: CPU \(WebAssembly SIMD\) · \d+ threads? · cross-origin isolated/);
  console.log(`browser.test: status line: ${status}`);
});

browserTest("the MLP trains on Fashion-MNIST in the page: loss falls, charts, progress and grid fill in", async () => {
  const before = await seriesPixels(); // the legend's swatch
  const run = await train({ steps: 30, batch: 64, evalImages: 1000 });
  cpuLosses = run.losses;
  assert.is(run.losses.length, 30);
  const first = mean(run.losses.slice(0, 5)), last = mean(run.losses.slice(-5));
  assert.ok(last < 0.6 * first, `loss fell: first five ${first.toFixed(3)}, last five ${last.toFixed(3)}`);
  assert.ok(run.testAccuracy > 0.6, `test accuracy after 30 steps: ${run.testAccuracy}`);
  assert.ok(await seriesPixels() > before + 200, "the loss chart drew the training curve");
  assert.is(await page.getAttribute("#progress", "value"), "30");
  assert.match((await page.textContent("#grid-caption"))!, /first 32 test images/);
  assert.ok(await page.evaluate(() => (document.getElementById("grid") as HTMLCanvasElement).height > 100), "the grid is drawn");
});

browserTest("one thread gives exactly the losses of all the page's threads", async () => {
  const threads = await page.evaluate(() => (globalThis as any).demo.threads as number);
  console.log(`browser.test: the page's CPU backend offers ${threads} thread(s)`);
  if (threads === 1) return; // nothing to compare on a one-core machine
  assert.match((await page.textContent("#status"))!, new RegExp(`· ${threads} threads · cross-origin isolated`));
  const run = await train({ steps: 30, batch: 64, evalImages: 1000, threads: 1 });
  assert.match((await page.textContent("#status"))!, /· 1 thread · /);
  assert.equal(run.losses, cpuLosses);
});

browserTest("Stop then Resume gives exactly the losses of the uninterrupted run", async () => {
  const run = await train({ steps: 30, batch: 64, evalImages: 1000, stopAt: 5 });
  assert.equal(run.losses, cpuLosses);
});

browserTest("Download weights: the .safetensors has the page's SHA-256 and loads in Node", async () => {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const bytes = new Uint8Array(readFileSync((await download.path())!));
  await page.waitForFunction(() => (globalThis as any).demo.sha256 !== null);
  const shown = (await page.textContent("#weights-sha"))!.trim();
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  assert.is(Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""), shown);
  assert.match(download.suggestedFilename(), /^retrograd-mlp-step30\.safetensors$/);
  const state = rg.io.readSafetensors(bytes, download.suggestedFilename());
  const model = rg.models.createModel("mlp", { inChannels: 1, numClasses: 10, imageSize: 28 });
  model.loadStateDict(state);
  assert.equal([...state.keys()].sort(), [...model.stateDict().keys()].sort());

  mkdirSync("build/screenshots", { recursive: true });
  await page.screenshot({ path: "build/screenshots/browser-after-training.png", fullPage: true });
});

browserTest("ResNet-20 takes a few steps in the page", async () => {
  const run = await train({ model: "resnet20", steps: 3, batch: 16, evalImages: 32 });
  assert.is(run.losses.length, 3);
  assert.ok(run.losses.every(Number.isFinite), `losses ${run.losses}`);
});

browserTest("WebGPU in the page (where Chromium offers an adapter) matches the CPU losses", async () => {
  const adapter = await page.evaluate(() => (globalThis as any).demo.webgpu as string | null);
  if (!adapter) {
    console.log("browser.test: no WebGPU adapter in this Chromium; the WebGPU comparison did not run");
    return;
  }
  const small = { steps: 3, batch: 32, evalImages: 100 };
  const cpu = await train({ ...small, backend: "cpu" });
  const gpu = await train({ ...small, backend: "webgpu" });
  assert.match((await page.textContent("#status"))!, /^Backend: WebGPU/);
  console.log(`browser.test: WebGPU (${adapter}) losses ${gpu.losses.join(", ")}; CPU ${cpu.losses.join(", ")}`);
  for (let i = 0; i < cpu.losses.length; i++) {
    const diff = Math.abs(gpu.losses[i] - cpu.losses[i]);
    assert.ok(diff <= 1e-3 * Math.max(1, Math.abs(cpu.losses[i])), `step ${i + 1}: webgpu ${gpu.losses[i]} vs cpu ${cpu.losses[i]}`);
  }
});

browserTest("no console errors, failed requests or error messages on the page", async () => {
  assert.not.ok(await page.evaluate(() => document.getElementById("message")!.classList.contains("error")), "no error message shown");
  assert.equal(problems, []);
});

test.run();
