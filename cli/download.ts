/**
 * Downloading a dataset into the cache when it is nowhere on disk: each file fetched with a
 * progress bar, checked (SHA-256 where the registry knows a digest; always that it parses in
 * its format), and written atomically, so an interrupted download never leaves a file that
 * looks complete. CIFAR comes as one .tar.gz, unpacked here (plain ustar, regular files).
 */
import { join } from "node:path";
import { DatasetError, gunzip, parseCifar, readIdx, type DatasetSpec } from "../src/data/index.ts";
import { writeAtomic } from "./files.ts";

type Log = { write(s: string): void; isTTY?: boolean };

async function fetchWithProgress(url: string, log: Log): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new DatasetError(`download of ${url} failed: ${(error as Error).message}`);
  }
  if (!response.ok || !response.body) throw new DatasetError(`download of ${url} failed: HTTP ${response.status}`);
  const total = Number(response.headers.get("content-length")) || 0;
  const chunks: Uint8Array[] = [];
  let received = 0;
  let lastDraw = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (log.isTTY && Date.now() - lastDraw > 100) {
      lastDraw = Date.now();
      const pct = total ? Math.floor((100 * received) / total) : 0;
      const bar = total ? `[${"#".repeat(pct / 4).padEnd(25, ".")}] ${pct}%` : "";
      log.write(`\r\x1b[2K  ${url.split("/").pop()} ${bar} ${(received / 2 ** 20).toFixed(1)} MiB`);
    }
  }
  if (log.isTTY) log.write("\r\x1b[2K");
  if (total && received !== total) {
    throw new DatasetError(`download of ${url} was cut short: ${received} of ${total} bytes`);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.length;
  }
  log.write(`  ${url.split("/").pop()}: ${(received / 2 ** 20).toFixed(1)} MiB\n`);
  return bytes;
}

async function checkDigest(bytes: Uint8Array, expected: string | undefined, what: string): Promise<void> {
  if (!expected) return;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== expected) throw new DatasetError(`${what}: SHA-256 ${hex} does not match the expected ${expected}`);
}

/** The regular files of a (ustar) tar archive, by path. */
export function untar(tar: Uint8Array, source: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (from: number, length: number) =>
    new TextDecoder().decode(tar.subarray(from, from + length)).replace(/\0.*$/s, "");
  for (let offset = 0; offset + 512 <= tar.length;) {
    const name = text(offset, 100);
    if (!name) break; // two zero blocks end the archive
    const size = parseInt(text(offset + 124, 12).trim() || "0", 8);
    const type = text(offset + 156, 1) || "0";
    const prefix = text(offset + 345, 155);
    const start = offset + 512;
    if (!Number.isFinite(size) || start + size > tar.length) {
      throw new DatasetError(`${source}: truncated tar archive at entry "${name}"`);
    }
    if (type === "0") files.set(prefix ? `${prefix}/${name}` : name, tar.slice(start, start + size));
    offset = start + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** Fetch every file of `spec` into cacheDir/<name>; returns that directory. */
export async function downloadDataset(spec: DatasetSpec, cacheDir: string, log: Log): Promise<string> {
  const dir = join(cacheDir, spec.name);
  const names = [...spec.files.train, ...spec.files.test];
  if (spec.download.baseUrl) {
    log.write(`downloading ${spec.name} into ${dir}\n`);
    for (const name of names) {
      const url = `${spec.download.baseUrl}${name}.gz`;
      const bytes = await fetchWithProgress(url, log);
      await checkDigest(bytes, spec.sha256?.[`${name}.gz`], url);
      await readIdx(bytes, url); // must parse as IDX before it may land in the cache
      await writeAtomic(join(dir, `${name}.gz`), bytes);
    }
    return dir;
  }
  if (spec.download.archiveUrl) {
    const url = spec.download.archiveUrl;
    log.write(`downloading ${spec.name} into ${dir}\n`);
    const archive = await fetchWithProgress(url, log);
    await checkDigest(archive, spec.sha256?.[url.split("/").pop()!], url);
    const files = untar(await gunzip(archive, url), url);
    const sub = spec.subdirs[0];
    for (const name of names) {
      const bytes = files.get(`${sub}/${name}`);
      if (!bytes) throw new DatasetError(`${url}: the archive has no ${sub}/${name}`);
      parseCifar(bytes, { variant: spec.format === "cifar100" ? 100 : 10 }, `${url}:${name}`);
      await writeAtomic(join(dir, sub, name), bytes);
    }
    return dir;
  }
  throw new DatasetError(`${spec.name}: no download location is known`);
}
