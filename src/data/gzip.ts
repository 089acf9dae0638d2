/**
 * Gzip decompression for dataset files (MNIST-style .gz files). It uses the web-standard
 * DecompressionStream, which Node 20, Deno and browsers all provide, so the data layer needs
 * no runtime-specific zlib. Readers call `isGzip` and decompress only when the magic bytes
 * say so, which lets users keep either the plain or the compressed files.
 */
import { DatasetError } from "./errors.ts";

/** True when `bytes` start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompress a whole gzip file; a corrupt or truncated one is a DatasetError naming `source`. */
export async function gunzip(bytes: Uint8Array, source = "<gzip data>"): Promise<Uint8Array> {
  if (!isGzip(bytes)) {
    throw new DatasetError(`${source}: not a gzip file (expected magic bytes 1f 8b, found ${hexPrefix(bytes, 2)})`);
  }
  try {
    // Blob copies the bytes, so a view into a larger buffer (or a SharedArrayBuffer) is fine.
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new DatasetError(`${source}: corrupt or truncated gzip data (${reason})`);
  }
}

/** The first `count` bytes as hex, for error messages ("00 00 08 03"). */
export function hexPrefix(bytes: Uint8Array, count: number): string {
  const shown = Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return shown === "" ? "nothing (empty file)" : shown;
}
