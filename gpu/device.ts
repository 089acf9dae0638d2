/// <reference types="@webgpu/types" />
/**
 * WebGPU plumbing under the webgpu backend: the device and its failure state, a buffer pool
 * by size class, caches of shader modules / layouts / pipelines, a uniform arena, and the
 * lazily submitted command encoder. Dispatches are recorded into one encoder (one compute
 * pass while no copy intervenes); the encoder is submitted when someone reads, on flush(), and
 * every `dispatchesPerSubmit` dispatches, so that the GPU starts on the first part of a
 * training step while JavaScript records the rest. Uniforms are packed into a CPU-side arena
 * and uploaded with one writeBuffer just before the submit; a dispatch gives its slot as the
 * uniform binding's dynamic offset, so bind groups depend only on the storage buffers bound
 * and are cached: steady-state dispatching creates no GPU objects.
 */
import { type GpuErrors, plainGpuErrors } from "./errors.ts";
import { type KernelSpec, shaderSource, uniformBytes } from "./kernel.ts";

/**
 * How long a failed read-back waits for the device's `lost` promise. A lost device fails the
 * pending buffer mapping first and settles `lost` a moment later; waiting names the real cause.
 */
const LOST_GRACE_MS = 200;

/** The most dispatches one command encoder holds; sizes the uniform arena (and the profiler's queries). */
export const MAX_DISPATCHES_PER_SUBMIT = 256;

/**
 * Dispatches per submit by default. One submit per step leaves the GPU idle while the whole
 * step is recorded (on an H200, ~10 ms of JavaScript before 13 ms of kernels); submitting
 * every 32 dispatches (ResNet-20: 7 submits per step) lets the kernels of one part run while
 * the next is recorded. encoder.finish costs per dispatch, not per submit (bench/gpu_host.ts
 * on lavapipe); what the submits cost on a GPU, and what they gain, the host stage of
 * bench/gpu-check.sh measures (a submit every 32 against every 256 dispatches).
 */
const DISPATCHES_PER_SUBMIT = 32;

/**
 * Workgroups one dispatch needs to keep a large GPU busy: an H200 has 132 SMs, and two
 * resident 256-thread workgroups each hide each other's memory latency. The planned kernels
 * (gpu/kernels/gemm.ts) take the largest tile, most outputs per thread, that still gives this
 * many. WebGPU does not say how many SMs an adapter has, so every hardware adapter gets it.
 */
export const LARGE_GPU_WORKGROUPS = 256;

/**
 * The same for a CPU adapter (a software fallback such as Mesa's lavapipe): it runs one
 * workgroup at a time per CPU thread, up to 16 or 32 threads, and latency is the caches',
 * so 16 workgroups fill it; more only make each one smaller.
 */
export const CPU_ADAPTER_WORKGROUPS = 16;

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

/** Bind groups kept at most; past it the cache starts again (a step binds a few hundred). */
const MAX_CACHED_BIND_GROUPS = 4096;

/** A node of a kernel's bind-group cache: one level per binding, keyed by the GPU buffer bound there. */
interface BindGroupNode {
  group: GPUBindGroup | null;
  readonly next: Map<GPUBuffer, BindGroupNode>;
}

/** What a context keeps per kernel (by its key): layouts, module, pipelines and bind groups. */
interface KernelState {
  readonly group: GPUBindGroupLayout;
  readonly pipelineLayout: GPUPipelineLayout;
  module: GPUShaderModule | null;
  readonly uniformBytes: number;
  /** By constantsKey() of their specialisation constants. */
  readonly pipelines: Map<string, GPUComputePipeline>;
  readonly bindGroups: BindGroupNode;
}

/** "NAME=value,..." over the constants in name order ("" for none): one key per specialisation. */
function constantsKey(constants: Record<string, number | boolean> | undefined): string {
  if (!constants) return "";
  const names = Object.keys(constants);
  if (names.length > 1) names.sort();
  let key = "";
  for (const n of names) key += `${key ? "," : ""}${n}=${+constants[n]}`;
  return key;
}

/** Whether buffers[i] is also bound at another of the first `count` slots. */
function aliased(buffers: readonly GPUBuffer[], count: number, i: number): boolean {
  for (let j = 0; j < count; j++) if (j !== i && buffers[j] === buffers[i]) return true;
  return false;
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

  /** Free storage buffers by size class, each list sorted newest first, so pop() gives the oldest. */
  private readonly pool = new Map<number, GPUBuffer[]>();
  /** Creation number of each storage buffer: the pool's order. */
  private readonly serial = new WeakMap<GPUBuffer, number>();
  private storageBuffersMade = 0;
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private bytesInUse = 0;
  private peakBytes = 0;
  private liveBuffers = 0;

  private readonly kernels = new Map<string, KernelState>();
  private cachedBindGroups = 0;
  /** Scratch for dispatch(): the GPU buffers bound, and the uniforms' dynamic offset. */
  private readonly bound: GPUBuffer[] = [];
  private readonly dynamicOffset = new Uint32Array(1);

  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformArena: ArrayBuffer;
  private readonly uniformView: DataView;
  private uniformCursor = 0;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** The pipeline last set on `pass` (a dispatch of the same kernel does not set it again). */
  private passPipeline: GPUComputePipeline | null = null;
  private pendingDispatches = 0;
  /** Buffers the unsubmitted encoder touches: a write() to one of them must submit first. */
  private readonly pendingBuffers = new Set<GPUBuffer>();
  /** Per-binding-slot stand-ins for null (optional) buffers; one per slot so they never alias. */
  private readonly dummies: GPUBuffer[] = [];

  /** Submit after this many dispatches (1 to MAX_DISPATCHES_PER_SUBMIT); a tuning knob for benches. */
  dispatchesPerSubmit = DISPATCHES_PER_SUBMIT;
  /** Workgroups per dispatch that keep this adapter busy: the target of the GEMM plan (LARGE_GPU_WORKGROUPS, CPU_ADAPTER_WORKGROUPS). */
  busyWorkgroups = LARGE_GPU_WORKGROUPS;
  dispatches = 0;
  submits = 0;
  /** Bind groups created since creation (the rest of the dispatches found theirs cached). */
  bindGroupsCreated = 0;
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
    const gpu = this.pool.get(cls)?.pop() ?? this.newStorage(cls, `retrograd ${cls}B`);
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

  private newStorage(bytes: number, label: string): GPUBuffer {
    const gpu = this.device.createBuffer({ label, size: bytes, usage: storageUsage() });
    this.serial.set(gpu, this.storageBuffersMade++);
    return gpu;
  }

  /**
   * Return a storage buffer to the pool, in creation order. Which buffer an allocation gets
   * then depends only on which buffers are free, not on the order they were freed in: a
   * training step's tensors get the same buffers step after step, and its dispatches the
   * same cached bind groups (freed last-in-first-out, they would rotate among the buffers).
   */
  private recycle(gpu: GPUBuffer, bytes: number): void {
    let list = this.pool.get(bytes);
    if (!list) this.pool.set(bytes, (list = []));
    const s = this.serial.get(gpu)!;
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.serial.get(list[mid])! > s) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, gpu);
  }

  memory(): { bytesInUse: number; peakBytes: number; buffers: number } {
    return { bytesInUse: this.bytesInUse, peakBytes: this.peakBytes, buffers: this.liveBuffers };
  }

  resetPeak(): void {
    this.peakBytes = this.bytesInUse;
  }

  /** Destroy the pooled (free) buffers, giving their memory back to the driver. */
  trim(): void {
    this.clearBindGroups();
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
      let k = candidates.length - 1; // the oldest first, as alloc() takes them
      while (k >= 0 && this.pendingBuffers.has(candidates[k])) k--;
      buf.gpu = k >= 0 ? candidates.splice(k, 1)[0] : this.newStorage(buf.bytes, `retrograd ${buf.bytes}B`);
      this.recycle(old, buf.bytes);
    }
    // The source may view a SharedArrayBuffer (the threaded CPU heap): the spec's writeBuffer takes
    // AllowSharedBufferSource, though Deno's lib declares BufferSource only.
    this.device.queue.writeBuffer(buf.gpu, 0, data.buffer as ArrayBuffer, data.byteOffset, buf.length * 4);
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

  /** The cached objects of `spec` (by its key), made on first use. */
  private kernel(spec: KernelSpec): KernelState {
    let state = this.kernels.get(spec.key);
    if (!state) {
      const group = this.device.createBindGroupLayout({
        label: spec.key,
        entries: [
          // Every dispatch's uniforms sit at their own offset of one arena buffer, given at
          // setBindGroup time, so a bind group does not depend on them and can be reused.
          { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true } },
          ...spec.bindings.map((b, i): GPUBindGroupLayoutEntry => ({
            binding: i + 1, visibility: GPUShaderStage.COMPUTE,
            buffer: { type: b.writable ? "storage" : "read-only-storage" },
          })),
        ],
      });
      state = {
        group,
        pipelineLayout: this.device.createPipelineLayout({ label: spec.key, bindGroupLayouts: [group] }),
        module: null,
        uniformBytes: uniformBytes(spec),
        pipelines: new Map(),
        bindGroups: { group: null, next: new Map() },
      };
      this.kernels.set(spec.key, state);
    }
    return state;
  }

  /** The pipeline of `spec` specialised by `constants`, compiled once per distinct set of values. */
  pipeline(spec: KernelSpec, constants?: Record<string, number | boolean>): GPUComputePipeline {
    const state = this.kernel(spec);
    const key = constantsKey(constants);
    let pipeline = state.pipelines.get(key);
    if (!pipeline) {
      state.module ??= this.device.createShaderModule({ label: spec.key, code: shaderSource(spec) });
      const numeric: Record<string, number> = {};
      for (const n in constants) numeric[n] = +constants[n];
      pipeline = this.device.createComputePipeline({
        label: key ? `${spec.key}|${key}` : spec.key, layout: state.pipelineLayout,
        compute: { module: state.module, entryPoint: "main", constants: numeric },
      });
      state.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * The bind group of `state`'s layout over `buffers` (the uniform arena at binding 0), made
   * once per distinct combination: a training step binds the same pooled buffers in the same
   * roles every step, so after the first step nearly every dispatch finds its group here.
   */
  private bindGroupFor(state: KernelState, buffers: readonly GPUBuffer[], count: number): GPUBindGroup {
    let node = state.bindGroups;
    for (let i = 0; i < count; i++) {
      let next = node.next.get(buffers[i]);
      if (!next) node.next.set(buffers[i], (next = { group: null, next: new Map() }));
      node = next;
    }
    if (!node.group) {
      // Bounded: a workload whose buffers keep changing would otherwise grow the cache without end.
      if (this.cachedBindGroups >= MAX_CACHED_BIND_GROUPS) this.clearBindGroups();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.uniformBuffer, size: state.uniformBytes } }];
      for (let i = 0; i < count; i++) entries.push({ binding: i + 1, resource: { buffer: buffers[i] } });
      node.group = this.device.createBindGroup({ layout: state.group, entries });
      this.cachedBindGroups++;
      this.bindGroupsCreated++;
    }
    return node.group;
  }

  /** Forget every cached bind group (they hold their buffers: needed before buffers are destroyed). */
  private clearBindGroups(): void {
    for (const state of this.kernels.values()) state.bindGroups.next.clear();
    this.cachedBindGroups = 0;
  }

  private packUniforms(state: KernelState, spec: KernelSpec, params: Record<string, number> | undefined): number {
    const align = Math.max(16, this.limits.minUniformBufferOffsetAlignment);
    const offset = Math.ceil(this.uniformCursor / align) * align;
    if (offset + state.uniformBytes > this.uniformArena.byteLength) throw this.errors.failure("webgpu: uniform arena overflow");
    const view = this.uniformView;
    for (let k = 0; k < spec.params.length; k++) {
      const [name, type] = spec.params[k];
      const v = params?.[name];
      if (v === undefined) throw this.errors.failure(`webgpu: kernel ${spec.key} needs parameter ${name}`);
      const at = offset + 4 * k;
      if (type === "f32") view.setFloat32(at, v, true);
      else if (type === "u32") view.setUint32(at, v >>> 0, true);
      else view.setInt32(at, v | 0, true);
    }
    this.uniformCursor = offset + state.uniformBytes;
    return offset;
  }

  private dummy(slot: number): GPUBuffer {
    return (this.dummies[slot] ??= this.device.createBuffer({ label: "retrograd dummy", size: 16, usage: storageUsage() }));
  }

  dispatch(spec: KernelSpec, d: Dispatch): void {
    this.check();
    const gx = d.grid[0], gy = d.grid[1], gz = d.grid[2];
    if (gx === 0 || gy === 0 || gz === 0) return;
    const maxDim = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > maxDim || gy > maxDim || gz > maxDim) {
      throw this.errors.failure(`webgpu: ${spec.key} needs a grid of ${gx}×${gy}×${gz} workgroups; this device allows ${maxDim} per dimension`);
    }
    const count = spec.bindings.length;
    if (d.buffers.length !== count) {
      throw this.errors.failure(`webgpu: ${spec.key} takes ${count} buffers, got ${d.buffers.length}`);
    }
    if (this.pendingDispatches >= Math.min(this.dispatchesPerSubmit, MAX_DISPATCHES_PER_SUBMIT)) this.flush();
    const state = this.kernel(spec);
    const pipeline = this.pipeline(spec, d.constants);

    // The GPU buffers in binding order, in a scratch array (no allocation per dispatch).
    const gpuBuffers = this.bound;
    for (let i = 0; i < count; i++) gpuBuffers[i] = d.buffers[i]?.gpu ?? this.dummy(i);
    // A written buffer may not be bound twice in one dispatch (WebGPU forbids aliasing a
    // writable binding). In-place calls such as binary(mul, dz, dy, dz) run on a copy of
    // the output that is copied back afterwards.
    let writeBacks: { temp: GPUBuffer; target: GPUBuffer; bytes: number }[] | null = null;
    for (let i = 0; i < count; i++) {
      const buf = d.buffers[i];
      if (!spec.bindings[i].writable || !buf || !aliased(gpuBuffers, count, i)) continue;
      const target = gpuBuffers[i];
      const temp = this.pool.get(buf.bytes)?.pop() ?? this.newStorage(buf.bytes, "retrograd alias temp");
      this.copyRaw(target, temp, buf.bytes);
      gpuBuffers[i] = temp;
      (writeBacks ??= []).push({ temp, target, bytes: buf.bytes });
    }

    this.dynamicOffset[0] = this.packUniforms(state, spec, d.params);
    const bindGroup = this.bindGroupFor(state, gpuBuffers, count);
    if (this.observer) {
      this.endPass();
      this.pass = this.commandEncoder().beginComputePass(this.observer.passFor(spec, d));
    }
    const pass = this.computePass();
    if (pipeline !== this.passPipeline) pass.setPipeline((this.passPipeline = pipeline));
    pass.setBindGroup(0, bindGroup, this.dynamicOffset, 0, 1);
    pass.dispatchWorkgroups(gx, gy, gz);
    if (this.observer) this.endPass();
    for (let i = 0; i < count; i++) this.pendingBuffers.add(gpuBuffers[i]);
    this.pendingDispatches++;
    this.dispatches++;
    if (writeBacks) {
      for (const w of writeBacks) {
        this.copyRaw(w.temp, w.target, w.bytes);
        this.recycle(w.temp, w.bytes);
      }
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
    this.passPipeline = null;
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
