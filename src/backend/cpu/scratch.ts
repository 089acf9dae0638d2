/**
 * Per-thread kernel scratch in the CPU backend's heap: each thread (the main one, index 0, and
 * worker t at index t) has its own gemm packing area, set once per instance, and its own
 * im2col / padded-image area for convolutions, grown on demand to what the convolution kernels
 * ask for (assembly/conv.ts conv_scratch_floats). One kernel runs on a thread at a time, so
 * one area per thread is enough, and the areas are kept for the backend's life. One more area,
 * shared by all threads, holds what one step of a backend call prepares for all its parts (the
 * transformed filters of a Winograd convolution).
 */
import type { Heap, WasmBuffer } from "./heap.ts";

export class Scratch {
  private readonly gemm: number[] = [];
  private readonly col: (WasmBuffer | null)[] = [];
  private shared: WasmBuffer | null = null;

  constructor(private readonly heap: Heap, private readonly gemmBytes: number) {}

  /** Thread t's gemm packing area (allocated on first request). */
  gemmFor(t: number): number {
    while (this.gemm.length <= t) {
      this.gemm.push(this.heap.alloc(Math.ceil(this.gemmBytes / 4)).ptr);
      this.col.push(null);
    }
    return this.gemm[t];
  }

  /** Thread t's convolution area of at least `floats` floats. */
  colFor(t: number, floats: number): number {
    this.gemmFor(t);
    const cur = this.col[t];
    if (cur && cur.length >= floats) return cur.ptr;
    if (cur) this.heap.free(cur);
    const next = this.heap.alloc(floats);
    this.col[t] = next;
    return next.ptr;
  }

  /** The area shared by all threads, of at least `floats` floats. */
  sharedFor(floats: number): number {
    if (this.shared && this.shared.length >= floats) return this.shared.ptr;
    if (this.shared) this.heap.free(this.shared);
    this.shared = this.heap.alloc(floats);
    return this.shared.ptr;
  }
}
