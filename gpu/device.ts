/// <reference types="@webgpu/types" />
/**
 * WebGPU plumbing under the webgpu backend: the device and its failure state, a buffer pool
 * by size class, caches of shader modules / layouts / pipelines, a uniform arena, and the
 * lazily submitted command encoder. Every dispatch of a training step is recorded into one
 * encoder (one compute pass while no copy intervenes); the encoder is submitted when someone
 * reads, when it holds MAX_DISPATCHES_PER_SUBMIT dispatches, or on flush(). Uniforms are
 * packed into a CPU-side arena and uploaded with one writeBuffer just before the submit, so
 * steady-state dispatching creates no GPU buffers, only bind groups.
 */
import { type GpuErrors, plainGpuErrors } from "./errors.ts";
import { type KernelSpec, shaderSource, uniformBytes } from "./kernel.ts";

/**
 * How long a failed read-back waits for the device's `lost` promise. A lost device fails the
 * pending buffer mapping first and settles `lost` a moment later; waiting names the real cause.
 */
const LOST_GRACE_MS = 200;

/** Dispatches per command encoder before it is submitted; bounds the uniform arena too. */
export const MAX_DISPATCHES_PER_SUBMIT = 256;

// Functions, not constants: GPUBufferUsage exists only where WebGPU does, and this module
// must load everywhere (Node imports it and finds no adapter).
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const stagingUsage = () => GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST;

/** A pooled GPU buffer seen by the backend as `length` float32 elements. */
export class GpuBuffer {
  /** Mutable: write() may rename the storage (see GpuContext.write). */
  constructor(public gpu: GPUBuffer, readonly length: number, readonly bytes: number) {}
}

/** What a dispatch binds, in the spec's binding order; null gets a private dummy buffer. */
export type Bound = GpuBuffer | null;

export interface Dispatch {
  params?: Record<string, number>;
  constants?: Record<string, number | boolean>;
  buffers: readonly Bound[];
  /** Workgroups in x, y, z. */
  grid: readonly [number, number, number];
}

/**
 * Watches dispatches while set on a GpuContext (gpu/profiler.ts): each dispatch then gets a
 * compute pass of its own, begun with the descriptor the observer gives (its timestamp
 * writes), and the observer adds its commands (query resolves) before each submit.
 */
export interface DispatchObserver {
  passFor(spec: KernelSpec, d: Dispatch): GPUComputePassDescriptor;
  beforeSubmit(encoder: GPUCommandEncoder): void;
}

/**
 * Round a byte count up to its size class: 256-byte steps up to 4 KiB, then four classes per
 * power of two, so freed buffers serve similar requests and waste stays under 25 %.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

/** Workgroups for `count` flat workgroup numbers, folding past the 65535-per-dimension limit into y. */
export function foldedGrid(count: number, maxPerDim: number): [number, number, number] {
  if (count <= maxPerDim) return [count, 1, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y, 1];
}

export class GpuContext {
  private failure: Error | null = null;
  private destroyed = false;
  readonly limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxComputeWorkgroupStorageSize: number;
    minUniformBufferOffsetAlignment: number;
  };

  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private bytesInUse = 0;
  private peakBytes = 0;
  private liveBuffers = 0;

  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformArena: ArrayBuffer;
  private readonly uniformView: DataView;
  private uniformCursor = 0;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  /** Buffers the unsubmitted encoder touches: a write() to one of them must submit first. */
  private readonly pendingBuffers = new Set<GPUBuffer>();
  /** Per-binding-slot stand-ins for null (optional) buffers; one per slot so they never alias. */
  private readonly dummies: GPUBuffer[] = [];

  dispatches = 0;
  submits = 0;
  /** Null except while profiling: the normal path pays one test per dispatch for it. */
  observer: DispatchObserver | null = null;

  constructor(readonly device: GPUDevice, private readonly errors: GpuErrors = plainGpuErrors) {
    const l = device.limits;
    this.limits = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
    };
    // Every dispatch gets its own uniform slot (at most 256 bytes of parameters each).
    const arenaBytes = MAX_DISPATCHES_PER_SUBMIT * Math.max(256, l.minUniformBufferOffsetAlignment);
    this.uniformArena = new ArrayBuffer(arenaBytes);
    this.uniformView = new DataView(this.uniformArena);
    this.uniformBuffer = device.createBuffer({
      label: "retrograd uniforms", size: arenaBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      if (this.destroyed) return;
      // The loss replaces an earlier error: it is what every later call will run into, and
      // a lost device may report errors of its own on the way down.
      const before = this.failure ? ` (before it: ${this.failure.message})` : "";
      this.failure = this.errors.lost(`webgpu: device lost (${info.reason}): ${info.message}${before}`);
    });
    device.addEventListener("uncapturederror", (event) => {
      const error = (event as GPUUncapturedErrorEvent).error;
      // GPUOutOfMemoryError exists wherever WebGPU does, but Node's binding may not make it global.
      const oom = typeof GPUOutOfMemoryError === "function" && error instanceof GPUOutOfMemoryError;
      this.failure ??= oom
        ? this.errors.outOfMemory(`webgpu: out of GPU memory (${this.bytesInUse} bytes in live tensors): ${error.message}`)
        : this.errors.failure(`webgpu: the device reported an error: ${error.message}`);
    });
  }

  /** The most float32 elements one buffer (and one storage binding) may hold. */
  get maxBufferElements(): number {
    return Math.floor(Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize) / 4);
  }

  /** Throw the recorded device failure, if any (every entry point calls this first). */
  check(): void {
    if (this.failure) throw this.failure;
    if (this.destroyed) throw this.errors.lost("webgpu: the backend was destroyed");
  }

  // ---- memory ----

  alloc(length: number): GpuBuffer {
    this.check();
    const bytes = length * 4;
    const limit = this.maxBufferElements * 4;
    if (bytes > limit) {
      throw this.errors.failure(
        `webgpu: a tensor of ${length} elements (${bytes} bytes) exceeds this device's maxStorageBufferBindingSize (${limit} bytes)`,
      );
    }
    const cls = Math.min(sizeClass(bytes), limit);
    const gpu = this.pool.get(cls)?.pop() ??
      this.device.createBuffer({ label: `retrograd ${cls}B`, size: cls, usage: storageUsage() });
    this.bytesInUse += cls;
    this.liveBuffers++;
    if (this.bytesInUse > this.peakBytes) this.peakBytes = this.bytesInUse;
    return new GpuBuffer(gpu, length, cls);
  }

  free(buf: GpuBuffer): void {
    this.recycle(buf.gpu, buf.bytes);
    this.bytesInUse -= buf.bytes;
    this.liveBuffers--;
  }

  private recycle(gpu: GPUBuffer, bytes: number): void {
    let list = this.pool.get(bytes);
    if (!list) this.pool.set(bytes, (list = []));
    list.push(gpu);
  }

  memory(): { bytesInUse: number; peakBytes: number; buffers: number } {
    return { bytesInUse: this.bytesInUse, peakBytes: this.peakBytes, buffers: this.liveBuffers };
  }

  resetPeak(): void {
    this.peakBytes = this.bytesInUse;
  }

  /** Destroy the pooled (free) buffers, giving their memory back to the driver. */
  trim(): void {
    for (const list of [...this.pool.values(), ...this.stagingPool.values()]) for (const b of list) b.destroy();
    this.pool.clear();
    this.stagingPool.clear();
  }

  // ---- transfers ----

  write(buf: GpuBuffer, data: Float32Array | Int32Array): void {
    this.check();
    if (buf.length === 0) return;
    // queue.writeBuffer runs before commands still waiting in the encoder. When those use
    // this GPU buffer (possibly under a previous owner, via the pool), give the tensor fresh
    // storage instead of submitting early: the write replaces all of its contents, and the
    // waiting commands keep reading the old buffer, which is what they were recorded against.
    if (this.pendingBuffers.has(buf.gpu)) {
      const old = buf.gpu;
      const candidates = this.pool.get(buf.bytes) ?? [];
      const k = candidates.findIndex((g) => !this.pendingBuffers.has(g));
      buf.gpu = k >= 0 ? candidates.splice(k, 1)[0]
        : this.device.createBuffer({ label: `retrograd ${buf.bytes}B`, size: buf.bytes, usage: storageUsage() });
      this.recycle(old, buf.bytes);
    }
    this.device.queue.writeBuffer(buf.gpu, 0, data.buffer, data.byteOffset, buf.length * 4);
  }

  async read(buf: GpuBuffer): Promise<Float32Array> {
    this.check();
    const bytes = buf.length * 4;
    if (bytes === 0) return new Float32Array(0);
    const cls = sizeClass(bytes);
    const staging = this.stagingPool.get(cls)?.pop() ??
      this.device.createBuffer({ label: `retrograd staging ${cls}B`, size: cls, usage: stagingUsage() });
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(buf.gpu, 0, staging, 0, bytes);
    this.flush();
    let out: Float32Array;
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
      out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
    } catch (e) {
      await Promise.race([this.device.lost, new Promise((resolve) => setTimeout(resolve, LOST_GRACE_MS))]);
      this.check();
      throw this.errors.failure(`webgpu: reading a buffer back failed: ${(e as Error).message}`);
    }
    let list = this.stagingPool.get(cls);
    if (!list) this.stagingPool.set(cls, (list = []));
    list.push(staging);
    // Errors are reported asynchronously; a read is where a caller can see them.
    this.check();
    return out;
  }

  /** y[yOffset, +length) = x[xOffset, +length) as a transfer command (no kernel); offsets in elements. */
  copy(x: GpuBuffer, y: GpuBuffer, length: number, xOffset = 0, yOffset = 0): void {
    this.check();
    if (length === 0 || (x.gpu === y.gpu && xOffset === yOffset)) return;
    this.copyRaw(x.gpu, y.gpu, length * 4, xOffset * 4, yOffset * 4);
  }

  private copyRaw(from: GPUBuffer, to: GPUBuffer, bytes: number, fromByte = 0, toByte = 0): void {
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(from, fromByte, to, toByte, bytes);
    this.pendingBuffers.add(from);
    this.pendingBuffers.add(to);
  }

  // ---- kernels ----

  private layoutFor(spec: KernelSpec): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let layout = this.layouts.get(spec.key);
    if (!layout) {
      const group = this.device.createBindGroupLayout({
        label: spec.key,
        entries: [
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
          ...spec.bindings.map((b, i): GPUBindGroupLayoutEntry => ({
            binding: i + 1, visibility: GPUShaderStage.COMPUTE,
            buffer: { type: b.writable ? "storage" : "read-only-storage" },
          })),
        ],
      });
      layout = { group, pipeline: this.device.createPipelineLayout({ label: spec.key, bindGroupLayouts: [group] }) };
      this.layouts.set(spec.key, layout);
    }
    return layout;
  }

  /** The pipeline of `spec` specialised by `constants`, compiled once per distinct key. */
  pipeline(spec: KernelSpec, constants: Record<string, number | boolean> = {}): GPUComputePipeline {
    const names = Object.keys(constants).sort();
    const key = `${spec.key}|${names.map((n) => `${n}=${+constants[n]}`).join(",")}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      let module = this.modules.get(spec.key);
      if (!module) {
        module = this.device.createShaderModule({ label: spec.key, code: shaderSource(spec) });
        this.modules.set(spec.key, module);
      }
      const numeric: Record<string, number> = {};
      for (const n of names) numeric[n] = +constants[n];
      pipeline = this.device.createComputePipeline({
        label: key, layout: this.layoutFor(spec).pipeline,
        compute: { module, entryPoint: "main", constants: numeric },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  private packUniforms(spec: KernelSpec, params: Record<string, number>): number {
    const align = Math.max(16, this.limits.minUniformBufferOffsetAlignment);
    const offset = Math.ceil(this.uniformCursor / align) * align;
    const size = uniformBytes(spec);
    if (offset + size > this.uniformArena.byteLength) throw this.errors.failure("webgpu: uniform arena overflow");
    spec.params.forEach(([name, type], k) => {
      const v = params[name];
      if (v === undefined) throw this.errors.failure(`webgpu: kernel ${spec.key} needs parameter ${name}`);
      const at = offset + 4 * k;
      if (type === "f32") this.uniformView.setFloat32(at, v, true);
      else if (type === "u32") this.uniformView.setUint32(at, v >>> 0, true);
      else this.uniformView.setInt32(at, v | 0, true);
    });
    this.uniformCursor = offset + size;
    return offset;
  }

  private dummy(slot: number): GPUBuffer {
    return (this.dummies[slot] ??= this.device.createBuffer({ label: "retrograd dummy", size: 16, usage: storageUsage() }));
  }

  dispatch(spec: KernelSpec, d: Dispatch): void {
    this.check();
    const [gx, gy, gz] = d.grid;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxDim || gy > maxDim || gz > maxDim) {
      throw this.errors.failure(`webgpu: ${spec.key} needs a grid of ${gx}×${gy}×${gz} workgroups; this device allows ${maxDim} per dimension`);
    }
    if (d.buffers.length !== spec.bindings.length) {
      throw this.errors.failure(`webgpu: ${spec.key} takes ${spec.bindings.length} buffers, got ${d.buffers.length}`);
    }
    if (this.pendingDispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    const pipeline = this.pipeline(spec, d.constants);

    // A written buffer may not be bound twice in one dispatch (WebGPU forbids aliasing a
    // writable binding). In-place calls such as binary(mul, dz, dy, dz) run on a copy of
    // the output that is copied back afterwards.
    const gpuBuffers = d.buffers.map((b, i) => b?.gpu ?? this.dummy(i));
    const writeBacks: { temp: GPUBuffer; target: GPUBuffer; bytes: number }[] = [];
    spec.bindings.forEach((binding, i) => {
      const target = gpuBuffers[i];
      const buf = d.buffers[i];
      if (!binding.writable || !buf || !gpuBuffers.some((g, j) => j !== i && g === target)) return;
      const temp = this.pool.get(buf.bytes)?.pop() ??
        this.device.createBuffer({ label: "retrograd alias temp", size: buf.bytes, usage: storageUsage() });
      this.copyRaw(target, temp, buf.bytes);
      gpuBuffers[i] = temp;
      writeBacks.push({ temp, target, bytes: buf.bytes });
    });

    const offset = this.packUniforms(spec, d.params ?? {});
    const bindGroup = this.device.createBindGroup({
      layout: this.layoutFor(spec).group,
      entries: [
        { binding: 0, resource: { buffer: this.uniformBuffer, offset, size: uniformBytes(spec) } },
        ...gpuBuffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
      ],
    });
    if (this.observer) {
      this.endPass();
      this.pass = this.commandEncoder().beginComputePass(this.observer.passFor(spec, d));
    }
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.observer) this.endPass();
    for (const g of gpuBuffers) this.pendingBuffers.add(g);
    this.pendingDispatches++;
    this.dispatches++;
    for (const w of writeBacks) {
      this.copyRaw(w.temp, w.target, w.bytes);
      this.recycle(w.temp, w.bytes);
    }
  }

  // ---- command recording ----

  private commandEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder({ label: "retrograd step" }));
  }

  private computePass(): GPUComputePassEncoder {
    return (this.pass ??= this.commandEncoder().beginComputePass());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submit everything recorded so far (uniforms first, in one upload). */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    this.observer?.beforeSubmit(this.encoder);
    if (this.uniformCursor > 0) {
      this.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformArena, 0, this.uniformCursor);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.uniformCursor = 0;
    this.pendingDispatches = 0;
    this.pendingBuffers.clear();
    this.submits++;
  }

  /** Submit and wait until the GPU has finished everything, then report any device error. */
  async synchronize(): Promise<void> {
    this.check();
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.flush();
    this.destroyed = true;
    this.trim();
    this.device.destroy();
  }
}
