/**
 * The demo server (scripts/serve.mjs) closes the file of a download the client aborts: with
 * stream.pipe the file stayed open until garbage collection (Node warns that this will
 * become fatal), one descriptor per aborted download; with stream.pipeline it is closed as
 * soon as the client goes. Counted on this process's open descriptors (/proc/self/fd).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "./support/browser.ts";

const hasProcFs = existsSync("/proc/self/fd");
if (!hasProcFs) console.log("serve.test: skipped: no /proc/self/fd to count open files");

/** Open descriptors of this process that point at `path`. */
function openCount(path: string): number {
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed while we looked
    }
  }).length;
}

/** GET `path` and abort once the first bytes of the body arrive. */
function abortedDownload(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path }, (res) => {
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", (e) => (req.destroyed ? resolve() : reject(e)));
    req.end();
  });
}

(hasProcFs ? test : test.skip)("aborted downloads leave no file open on the server", async () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-serve-"));
  const big = join(dir, "big.bin");
  writeFileSync(big, new Uint8Array(32 * 2 ** 20)); // far more than one socket buffer
  const server = await serve({ "/": dir });
  try {
    for (let i = 0; i < 10; i++) await abortedDownload(server.port, "/big.bin");
    // The server learns of each abort a moment later: wait for the count to settle.
    let open = openCount(big);
    for (let tries = 0; open > 0 && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 50));
      open = openCount(big);
    }
    assert.is(open, 0, `${open} of 10 aborted downloads left the file open`);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
