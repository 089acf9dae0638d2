/**
 * Gzip decompression for dataset files (MNIST-style .gz files). It uses the web-standard
 * DecompressionStream, which Node 20, Deno and browsers all provide, so the data layer needs
 * no runtime-specific zlib. Readers call `isGzip` and decompress only when the magic bytes
 * say so, which lets users keep either the plain or the compressed files.
 *
 * Decompression streams and is bounded: a file may inflate to at most MAX_INFLATED_BYTES,
 * or less when its own header (read from the first bytes out) declares less, and it stops
 * as soon as the output passes that bound (within one 4 KiB input slice, at most ~4 MiB
 * out). A 1 MB gzip bomb that would inflate to gigabytes is refused after the bytes its
 * header allows, not after the gigabytes.
 */
import { DatasetError } from "./errors.ts";

/** The most any dataset file may inflate to (1 GiB; CIFAR-100's training file is 154 MB). */
export const MAX_INFLATED_BYTES = 2 ** 30;

/**
 * The size a file declares, from its first bytes out (`head`, growing as data arrives):
 * undefined while more are needed; it may throw when the head already shows the file is
 * not what it should be.
 */
export type DeclaredSize = (head: Uint8Array) => { bytes: number; what: string } | undefined;

/** Compressed bytes fed to the decompressor at a time. */
const INPUT_SLICE = 4096;

/** Header bytes a DeclaredSize may look at (an IDX header has at most 4 + 4·255). */
const HEAD_BYTES = 1024;

/** True when `bytes` start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompress a whole gzip file; a corrupt or truncated one, or one that inflates past its
 * bound (`declared` by its header, else `maxBytes`), is a DatasetError naming `source`.
 */
export async function gunzip(
  bytes: Uint8Array, source = "<gzip data>", { maxBytes = MAX_INFLATED_BYTES, declared }: { maxBytes?: number; declared?: DeclaredSize } = {},
): Promise<Uint8Array> {
  if (!isGzip(bytes)) {
    throw new DatasetError(`${source}: not a gzip file (expected magic bytes 1f 8b, found ${hexPrefix(bytes, 2)})`);
  }
  // The input goes in small slices (copies, so a view of a SharedArrayBuffer is fine): a
  // decompressor may inflate a whole input chunk at once (Deno's does), and one slice can
  // inflate to at most about a thousand times its size.
  let offset = 0;
  const input = new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + INPUT_SLICE));
      offset += INPUT_SLICE;
    },
  });
  const reader = input.pipeThrough(new DecompressionStream("gzip")).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let bound = { bytes: maxBytes, what: `the ${maxBytes} bytes a dataset file may inflate to` };
  let boundKnown = declared === undefined;
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (cause) {
        const reason = cause instanceof Error ? cause.message : String(cause);
        throw new DatasetError(`${source}: corrupt or truncated gzip data (${reason})`);
      }
      if (chunk.done) break;
      chunks.push(chunk.value);
      total += chunk.value.length;
      if (!boundKnown) {
        const found = declared!(concat(chunks, Math.min(total, HEAD_BYTES)));
        if (found) {
          boundKnown = true;
          if (found.bytes < bound.bytes) bound = found;
        } else if (total >= HEAD_BYTES) {
          boundKnown = true;
        }
      }
      if (total > bound.bytes) {
        throw new DatasetError(`${source}: the gzip data inflates to more than ${bound.what}; stopped after ${total} bytes (a damaged file or a gzip bomb)`);
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  return concat(chunks, total);
}

/** The first `length` bytes of `chunks`, joined. */
function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    if (at >= length) break;
    const part = c.subarray(0, length - at);
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The first `count` bytes as hex, for error messages ("00 00 08 03"). */
export function hexPrefix(bytes: Uint8Array, count: number): string {
  const shown = Array.from(bytes.subarray(0, count), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return shown === "" ? "nothing (empty file)" : shown;
}
