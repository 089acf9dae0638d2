/**
 * The CPU backend's allocator: buffers are byte ranges of the wasm linear memory, handed out
 * by a size-class free list above the module's static data, so a training step that allocates
 * the same shapes every time reuses the same memory and never grows the heap after its first
 * step. Freed ranges are never returned to the engine (wasm memory only grows).
 */
import type { DeviceBuffer, MemoryInfo } from "../backend.ts";
import { OutOfMemoryError } from "../../errors.ts";

/** A range of linear memory: `length` 4-byte elements at byte offset `ptr`. */
export class WasmBuffer implements DeviceBuffer {
  constructor(readonly ptr: number, readonly length: number, readonly bytes: number) {}
}

export const PAGE = 65536;
/** Bytes below this belong to the wasm module's static data (scripts/build_wasm.mjs checks it). */
export const HEAP_BASE = PAGE;
const ALIGN = 64;

/**
 * Round a request up to its size class: exact 64-byte steps for small buffers, and eight
 * classes per power of two above 64 KiB, so freed blocks are reused by similar requests
 * while waste stays under 12.5 %.
 */
function sizeClass(bytes: number): number {
  const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  if (b <= PAGE) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

export class Heap {
  private top = HEAP_BASE;
  private readonly freeLists = new Map<number, number[]>();
  private bytesInUse = 0;
  private peakBytes = 0;
  private liveBuffers = 0;

  /** `memory()` is the backend's current Memory (it moves to a shared one for threads). */
  constructor(private readonly memory: () => WebAssembly.Memory) {}

  alloc(length: number): WasmBuffer {
    const bytes = sizeClass(length * 4);
    const reusable = this.freeLists.get(bytes);
    let ptr = reusable?.pop();
    if (ptr === undefined) {
      // Grow first and move the top only once the memory is there: a failed request leaves
      // the allocator as it was, and the backend usable.
      const memory = this.memory();
      const needed = this.top + bytes - memory.buffer.byteLength;
      if (needed > 0) {
        try {
          memory.grow(Math.ceil(needed / PAGE));
        } catch (cause) {
          throw new OutOfMemoryError(
            `cpu: out of memory: a tensor of ${length} floats (${bytes} bytes) does not fit in the WebAssembly heap ` +
              `(${this.bytesInUse} bytes in use by ${this.liveBuffers} live buffers, heap ${memory.buffer.byteLength} bytes, ` +
              `at most 4 GiB): ${(cause as Error).message}; free tensors or use a smaller batch`,
          );
        }
      }
      ptr = this.top;
      this.top += bytes;
    }
    this.bytesInUse += bytes;
    this.liveBuffers++;
    if (this.bytesInUse > this.peakBytes) this.peakBytes = this.bytesInUse;
    return new WasmBuffer(ptr, length, bytes);
  }

  free(b: WasmBuffer): void {
    let list = this.freeLists.get(b.bytes);
    if (!list) this.freeLists.set(b.bytes, (list = []));
    list.push(b.ptr);
    this.bytesInUse -= b.bytes;
    this.liveBuffers--;
  }

  info(): MemoryInfo {
    return { bytesInUse: this.bytesInUse, peakBytes: this.peakBytes, buffers: this.liveBuffers };
  }

  resetPeak(): void {
    this.peakBytes = this.bytesInUse;
  }
}
