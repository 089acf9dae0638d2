/**
 * For the tests that drive headless Chromium (Node pass only): Debian's /usr/bin/chromium via
 * playwright-core with WebGPU enabled (SwiftShader) and the network chatter at start-up off,
 * plus the demo server (scripts/serve.mjs) on a free port. Both are loaded lazily so the
 * Deno pass, which only registers skipped tests, never touches them.
 */
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import type { Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Why the browser tests cannot run here ("" when they can). */
export function chromiumSkipReason(): string {
  if ("Deno" in globalThis) return "runs from the Node pass (it drives Chromium through playwright-core)";
  if (!existsSync(CHROMIUM)) return `Chromium is not installed (${CHROMIUM}; apt-get install -y chromium)`;
  return "";
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
    ],
  });
}

export interface Served {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** scripts/serve.mjs on a free port; `mounts` replaces its defaults when given. */
export async function serve(mounts?: Record<string, string>): Promise<Served> {
  // A computed path keeps esbuild from bundling the script (whose main check would then fire).
  const module = await import(pathToFileURL("scripts/serve.mjs").href);
  return module.startServer({ port: 0, ...(mounts ? { mounts } : {}) });
}
