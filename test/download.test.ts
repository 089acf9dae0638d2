/**
 * Dataset download into the cache, against a server on 127.0.0.1 (no outside network): the
 * files land in cacheDir/<name> and load from there; a file that is not what it claims, or
 * whose SHA-256 differs, is rejected and never written; CIFAR's .tar.gz is unpacked.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { downloadDataset } from "../cli/download.ts";
import { nodeFs } from "../cli/files.ts";

const quiet = { write: () => {} };
const images = readFileSync("test/fixtures/data/images-5x4x3-idx3-ubyte.gz");
const labels = readFileSync("test/fixtures/data/labels-5-idx1-ubyte.gz");

async function serve(files: Record<string, Uint8Array>): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const body = files[req.url!.slice(1)];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return { server, base: `http://127.0.0.1:${port}/` };
}

const idxFiles = (imgs: Uint8Array) => ({
  "train-images-idx3-ubyte.gz": imgs, "train-labels-idx1-ubyte.gz": labels,
  "t10k-images-idx3-ubyte.gz": imgs, "t10k-labels-idx1-ubyte.gz": labels,
});

test("an IDX dataset downloads into the cache and then loads from there", async () => {
  const { server, base } = await serve(idxFiles(images));
  const cache = mkdtempSync(join(tmpdir(), "retrograd-cache-"));
  try {
    const spec = { ...rg.data.datasetSpec("fashion-mnist"), download: { baseUrl: base } };
    const dir = await downloadDataset(spec, cache, quiet);
    assert.is(dir, join(cache, "fashion-mnist"));
    const ds = await rg.data.loadDataset("fashion-mnist", "test", { cacheDir: cache, systemDir: "/nonexistent" }, nodeFs);
    assert.is(ds.n, 5);
    assert.is(ds.height, 4);
  } finally {
    server.close();
  }
});

test("a download that is not IDX, or has the wrong SHA-256, is rejected and not written", async () => {
  const { server, base } = await serve(idxFiles(new TextEncoder().encode("<html>not found</html>")));
  const cache = mkdtempSync(join(tmpdir(), "retrograd-cache-"));
  try {
    const spec = { ...rg.data.datasetSpec("fashion-mnist"), download: { baseUrl: base } };
    await downloadDataset(spec, cache, quiet).then(() => assert.unreachable("must reject"), (e: Error) => {
      assert.instance(e, rg.data.DatasetError);
      assert.match(e.message, "train-images-idx3-ubyte.gz");
    });
    assert.not.ok(existsSync(join(cache, "fashion-mnist", "train-images-idx3-ubyte.gz")));
    const good = await serve(idxFiles(images));
    const pinned = { ...spec, download: { baseUrl: good.base }, sha256: { "train-images-idx3-ubyte.gz": "00".repeat(32) } };
    await downloadDataset(pinned, cache, quiet).then(() => assert.unreachable("must reject"), (e: Error) => {
      assert.match(e.message, /SHA-256 [0-9a-f]{64} does not match/);
    });
    good.server.close();
  } finally {
    server.close();
  }
});

test("CIFAR-10's .tar.gz is unpacked into the cache", async () => {
  const work = mkdtempSync(join(tmpdir(), "retrograd-tar-"));
  const record = readFileSync("test/fixtures/data/cifar10-3.bin");
  mkdirSync(join(work, "cifar-10-batches-bin"));
  for (const f of ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"]) {
    writeFileSync(join(work, "cifar-10-batches-bin", f), record);
  }
  const tar = spawnSync("tar", ["-czf", join(work, "c.tar.gz"), "-C", work, "cifar-10-batches-bin"]);
  assert.is(tar.status, 0);
  const { server, base } = await serve({ "cifar-10-binary.tar.gz": new Uint8Array(readFileSync(join(work, "c.tar.gz"))) });
  try {
    const cache = join(work, "cache");
    const spec = { ...rg.data.datasetSpec("cifar10"), download: { archiveUrl: `${base}cifar-10-binary.tar.gz` } };
    await downloadDataset(spec, cache, quiet);
    const ds = await rg.data.loadDataset("cifar10", "train", { cacheDir: cache, systemDir: "/nonexistent" }, nodeFs);
    assert.is(ds.n, 15);
    assert.is(ds.channels, 3);
  } finally {
    server.close();
  }
});

test.run();
