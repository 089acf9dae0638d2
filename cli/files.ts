/**
 * The CLI's file system: a DataFs for the dataset readers, atomic writes (temp file, fsync,
 * rename, so a crash leaves either the old file or the new one, never a torn one), and the
 * cache directory. Uses node:fs, which Node and Deno both provide.
 */
import { mkdir, open, readFile, rename, stat, unlink, appendFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { DataFs } from "../src/data/index.ts";

export const nodeFs: DataFs = {
  async exists(path) {
    try {
      return (await stat(path)).isFile();
    } catch {
      return false;
    }
  },
  async read(path) {
    return new Uint8Array(await readFile(path));
  },
};

/** Write `bytes` to `path` so that readers see the old content or the new, never a mix. */
export async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const handle = await open(tmp, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(tmp).catch(() => {});
    throw error;
  }
  await handle.close();
  await rename(tmp, path);
}

export async function append(path: string, text: string): Promise<void> {
  await appendFile(path, text);
}

export async function readBytes(path: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(path));
}

/** $RETROGRAD_CACHE, else $XDG_CACHE_HOME/retrograd, else ~/.cache/retrograd. */
export function cacheDir(): string {
  const env = process.env;
  return env.RETROGRAD_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "retrograd");
}
