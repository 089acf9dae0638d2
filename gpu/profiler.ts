/// <reference types="@webgpu/types" />
/**
 * The GPU time of every dispatch a GpuContext records while profiling: what a training step
 * spends in each kernel. Where the device was opened with "timestamp-query", each dispatch
 * runs in a compute pass of its own whose beginning and end write timestamps (WebGPU's
 * timestampWrites); the queries are resolved into the command encoder before each submit
 * and read back by stop(). Elsewhere ("replay") the dispatches are only recorded, and stop()
 * runs each one again alone on scratch buffers of the same sizes (so no live tensor is
 * touched), submitted and waited for, timing it on the host: the median of a few runs less an
 * empty submit's round trip. That is approximate: a host timer, no overlap, caches cold or
 * warm by chance, and stale data in the scratch buffers. Nothing here runs unless profiling.
 */
import { type Dispatch, type DispatchObserver, type GpuContext, MAX_DISPATCHES_PER_SUBMIT } from "./device.ts";
import type { KernelSpec } from "./kernel.ts";

/** One dispatch: its pipeline (kernel key and specialisation constants), uniforms, grid and GPU time. */
export interface DispatchTime {
  key: string;
  params: Record<string, number>;
  grid: readonly [number, number, number];
  ns: number;
}

export interface Profile {
  method: "timestamp-query" | "replay";
  dispatches: DispatchTime[];
  /** Timestamps only: first pass start to last pass end, summed over submits (kernels plus the gaps between them). */
  spanNs?: number;
}

interface Recorded {
  spec: KernelSpec;
  dispatch: Dispatch;
  key: string;
}

/** Host timings per replayed dispatch; the median is kept. */
const REPLAY_RUNS = 3;

function pipelineKey(spec: KernelSpec, d: Dispatch): string {
  const c = d.constants ?? {};
  const names = Object.keys(c).sort();
  return names.length ? `${spec.key}|${names.map((n) => `${n}=${+c[n]}`).join(",")}` : spec.key;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export class DispatchProfiler implements DispatchObserver {
  readonly method: Profile["method"];
  private readonly querySet: GPUQuerySet | null = null;
  private readonly resolveBuffer: GPUBuffer | null = null;
  /** Dispatches of the encoder being recorded. */
  private current: Recorded[] = [];
  /** Submitted: timestamp read-back buffers with their dispatches (timestamps), or every dispatch (replay). */
  private readonly submitted: { readback: GPUBuffer | null; records: Recorded[] }[] = [];

  /** Start profiling `ctx` (anything already recorded is submitted first, unprofiled). */
  constructor(private readonly ctx: GpuContext, opts: { forceReplay?: boolean } = {}) {
    ctx.flush();
    const device = ctx.device;
    this.method = device.features.has("timestamp-query") && !opts.forceReplay ? "timestamp-query" : "replay";
    if (this.method === "timestamp-query") {
      const count = 2 * MAX_DISPATCHES_PER_SUBMIT;
      this.querySet = device.createQuerySet({ label: "retrograd profile", type: "timestamp", count });
      this.resolveBuffer = device.createBuffer({
        label: "retrograd profile resolve", size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
    }
    ctx.observer = this;
  }

  passFor(spec: KernelSpec, d: Dispatch): GPUComputePassDescriptor {
    const at = this.current.length;
    this.current.push({ spec, dispatch: { ...d, params: { ...d.params } }, key: pipelineKey(spec, d) });
    if (!this.querySet) return {};
    return { timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * at, endOfPassWriteIndex: 2 * at + 1 } };
  }

  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (this.current.length === 0) return;
    let readback: GPUBuffer | null = null;
    if (this.querySet && this.resolveBuffer) {
      const bytes = this.current.length * 16;
      readback = this.ctx.device.createBuffer({ label: "retrograd profile readback", size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      encoder.resolveQuerySet(this.querySet, 0, 2 * this.current.length, this.resolveBuffer, 0);
      encoder.copyBufferToBuffer(this.resolveBuffer, 0, readback, 0, bytes);
    }
    this.submitted.push({ readback, records: this.current });
    this.current = [];
  }

  /** Stop profiling and return every dispatch's time, in recording order. */
  async stop(): Promise<Profile> {
    await this.ctx.synchronize();
    this.ctx.observer = null;
    const dispatches: DispatchTime[] = [];
    const entry = (r: Recorded, ns: number): DispatchTime =>
      ({ key: r.key, params: r.dispatch.params ?? {}, grid: r.dispatch.grid, ns });
    if (this.method === "timestamp-query") {
      let spanNs = 0;
      for (const { readback, records } of this.submitted) {
        await readback!.mapAsync(GPUMapMode.READ);
        const t = new BigUint64Array(readback!.getMappedRange().slice(0));
        readback!.destroy();
        // Vulkan and Metal timestamps as wgpu resolves them: ticks of the queue's timestamp
        // period, which is 1 ns on NVIDIA and on lavapipe (the period is not exposed to JS).
        records.forEach((r, i) => dispatches.push(entry(r, Number(t[2 * i + 1] - t[2 * i]))));
        spanNs += Number(t[2 * records.length - 1] - t[0]);
      }
      this.querySet!.destroy();
      this.resolveBuffer!.destroy();
      return { method: this.method, dispatches, spanNs };
    }
    const roundTrip = async (work: () => void) => {
      const times: number[] = [];
      for (let i = 0; i < REPLAY_RUNS; i++) {
        const t0 = performance.now();
        work();
        await this.ctx.synchronize();
        times.push(performance.now() - t0);
      }
      return median(times) * 1e6;
    };
    const empty = await roundTrip(() => {});
    for (const { records } of this.submitted) {
      for (const r of records) {
        const scratch = r.dispatch.buffers.map((b) => b && this.ctx.alloc(b.length));
        const ns = await roundTrip(() => this.ctx.dispatch(r.spec, { ...r.dispatch, buffers: scratch }));
        for (const b of scratch) if (b) this.ctx.free(b);
        dispatches.push(entry(r, Math.max(0, ns - empty)));
      }
    }
    return { method: this.method, dispatches };
  }
}
