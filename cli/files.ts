/**
 * The CLI's file system: a DataFs for the dataset readers, bounded reads (regular files only,
 * the size checked before reading), atomic writes (temp file, fsync, rename, so a crash
 * leaves either the old file or the new one, never a torn one), directories made one level
 * at a time, the removal of temp files that dead writers left behind, and the cache
 * directory. Every failure is a FileError naming the flag (when there is one), the path and
 * the reason, in one line. Uses node:fs, which Node and Deno both provide.
 */
import { access, appendFile, constants, mkdir, open, readdir, rename, stat, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { DataFs } from "../src/data/index.ts";
import { RetrogradError } from "../src/errors.ts";

/** A file or directory could not be read, written or created: the message names it and why. */
export class FileError extends RetrogradError {}

/** Largest file read into memory (2 GiB − 1, what one read can return): larger is a FileError. */
export const MAX_READ_BYTES = 2 ** 31 - 1;

/** "--weights /x: " or "/x: " before a reason. */
function where(path: string, flag?: string): string {
  return flag ? `${flag} ${path}: ` : `${path}: `;
}

/** The OS reason of a failed call, e.g. "no such file or directory (ENOENT)". */
function reason(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const known: Record<string, string> = {
    ENOENT: "no such file or directory", EACCES: "permission denied", EPERM: "operation not permitted",
    ENOTDIR: "a part of the path is not a directory", EISDIR: "is a directory", EROFS: "read-only file system",
    ENOSPC: "no space left on the device", EEXIST: "already exists", ELOOP: "too many symbolic links",
    ENAMETOOLONG: "name too long", EMFILE: "too many open files",
  };
  if (e?.code && known[e.code]) return `${known[e.code]} (${e.code})`;
  return e?.code ? `${e.message ?? "failed"} (${e.code})` : String(e?.message ?? e);
}

/** Turn an OS error into a FileError about `path`; other errors pass through. */
function fileError(error: unknown, path: string, what: string, flag?: string): Error {
  if (error instanceof RetrogradError) return error;
  if (typeof (error as { code?: unknown })?.code === "string") return new FileError(`${where(path, flag)}${what}: ${reason(error)}`);
  return error as Error;
}

/**
 * Read a whole regular file of at most MAX_READ_BYTES; `flag` names the option it came from.
 * Devices, FIFOs and directories are refused before anything is read (`/dev/zero` would
 * never end), and the size is checked on the open file.
 */
export async function readBytes(path: string, flag?: string): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw fileError(error, path, "cannot open", flag);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new FileError(`${where(path, flag)}not a regular file (${info.isDirectory() ? "a directory" : "a device, pipe or socket"})`);
    }
    if (info.size > MAX_READ_BYTES) {
      throw new FileError(`${where(path, flag)}${info.size} bytes is more than the ${MAX_READ_BYTES} a file may have here`);
    }
    const bytes = new Uint8Array(info.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled !== info.size) throw new FileError(`${where(path, flag)}the file shrank while it was read (${filled} of ${info.size} bytes)`);
    return bytes;
  } catch (error) {
    throw fileError(error, path, "cannot read", flag);
  } finally {
    await handle.close();
  }
}

export const nodeFs: DataFs = {
  async exists(path) {
    try {
      return (await stat(path)).isFile();
    } catch {
      return false;
    }
  },
  read: (path) => readBytes(path),
};

/**
 * Make directory `path` and any missing parents, one level at a time from the nearest one
 * that exists (Node's recursive mkdir spins forever on some paths, such as under /proc),
 * and check that it is writable. Errors name `flag` and `named` (the path the user gave).
 */
export async function makeDirectory(path: string, flag?: string, named = path): Promise<void> {
  const missing: string[] = [];
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    let info;
    try {
      info = await stat(dir);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw fileError(error, named, `cannot look at ${dir}`, flag);
    }
    if (info) {
      if (!info.isDirectory()) throw new FileError(`${where(named, flag)}${dir === resolve(named) ? "exists and is not a directory" : `${dir} is not a directory`}`);
      break;
    }
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw fileError(error, named, `cannot create ${dir}`, flag);
    }
  }
  try {
    await access(path, constants.W_OK);
  } catch (error) {
    throw fileError(error, named, `${path} is not writable`, flag);
  }
}

/** Write `bytes` to `path` so that readers see the old content or the new, never a mix. */
export async function writeAtomic(path: string, bytes: Uint8Array | string, flag?: string): Promise<void> {
  await makeDirectory(dirname(path), flag, path);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
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
  } catch (error) {
    throw fileError(error, path, "cannot write", flag);
  }
}

export async function append(path: string, text: string): Promise<void> {
  try {
    await appendFile(path, text);
  } catch (error) {
    throw fileError(error, path, "cannot append to it");
  }
}

/** True when a process with this id exists (EPERM: it does, and is someone else's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code !== "ESRCH";
  }
}

/**
 * Remove the `<name>.tmp-<pid>` files in `dir` that writeAtomic calls of processes no longer
 * running left behind (a kill -9 mid-write); returns their names. Files of live processes stay.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(/\.tmp-(\d+)$/.exec(name)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processExists(pid)) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch (error) {
      throw fileError(error, join(dir, name), "cannot remove this stale temporary file");
    }
  }
  return removed;
}

/** $RETROGRAD_CACHE, else $XDG_CACHE_HOME/retrograd, else ~/.cache/retrograd. */
export function cacheDir(): string {
  const env = process.env;
  return env.RETROGRAD_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "retrograd");
}
