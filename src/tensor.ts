/**
 * Tensor: a float32, NCHW, contiguous array on a backend, plus what autograd needs (the node
 * that made it, `requiresGrad`, `.grad`, hooks). Memory is explicit and reference counted:
 * several handles (views from reshape, tensors saved for backward) may share one Storage,
 * which is freed when the last handle lets go. `tidy(fn)` disposes every tensor created in
 * `fn` except what it returns, so a training step frees every intermediate it made.
 */
import type { Backend, DeviceBuffer } from "./backend/backend.ts";
import { getBackend } from "./backend/registry.ts";
import { DisposedError, ShapeError, ValueError } from "./errors.ts";
import { takeDraws } from "./random.ts";
import { backward, type Node } from "./autograd.ts";

/** Reference-counted device memory shared by the handles that view it. */
export class Storage {
  refs = 1;
  constructor(readonly backend: Backend, readonly buffer: DeviceBuffer) {}
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buffer);
  }
}

/** A gradient hook: gets the gradient, returns a replacement or nothing to keep it. */
export type GradHook = (grad: Tensor) => Tensor | void;

export type Shape = readonly number[];

/** The tensors created in each open tidy() scope, innermost last. */
const scopes: Set<Tensor>[] = [];
/** While > 0, new tensors join no scope (the backward pass owns its gradients itself). */
let untrackedDepth = 0;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${what}: invalid shape [${shape.join(", ")}]: dims must be non-negative integers`);
    }
  }
}

export class Tensor {
  readonly shape: Shape;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradFn: Node | null = null;
  /** How io writes it: int64 for counters such as BatchNorm's num_batches_tracked. */
  dtype: "float32" | "int64" = "float32";
  readonly hooks: GradHook[] = [];
  private storageRef: Storage | null;

  constructor(storage: Storage, shape: Shape) {
    this.storageRef = storage;
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    if (untrackedDepth === 0 && scopes.length > 0) scopes[scopes.length - 1].add(this);
  }

  get storage(): Storage {
    if (this.storageRef === null) {
      throw new DisposedError(`tensor of shape [${this.shape.join(", ")}] was used after dispose()`);
    }
    return this.storageRef;
  }
  get buffer(): DeviceBuffer {
    return this.storage.buffer;
  }
  get backend(): Backend {
    return this.storage.backend;
  }
  get isDisposed(): boolean {
    return this.storageRef === null;
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get rank(): number {
    return this.shape.length;
  }

  /** A copy of the values (synchronous: CPU backend only). */
  dataSync(): Float32Array {
    const backend = this.backend;
    if (!backend.readSync) {
      throw new ValueError(`dataSync() is not available on the ${backend.name} backend; use await t.data()`);
    }
    return backend.readSync(this.buffer);
  }
  /** A copy of the values, read back from the device when needed. */
  data(): Promise<Float32Array> {
    return this.backend.read(this.buffer);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item(): tensor has ${this.size} elements, shape [${this.shape.join(", ")}]`);
    return this.dataSync()[0];
  }

  /** Backpropagate from this tensor (a scalar unless `grad` is given). */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** Call `hook` with this tensor's gradient during backward; it may return a replacement. */
  registerHook(hook: GradHook): { remove(): void } {
    if (!this.requiresGrad) throw new ValueError("registerHook: tensor does not require grad");
    this.hooks.push(hook);
    return { remove: () => void this.hooks.splice(this.hooks.indexOf(hook) >>> 0, 1) };
  }

  /** A handle on the same storage, outside the graph. */
  detach(): Tensor {
    return new Tensor(this.storage.retain(), this.shape);
  }

  /** Mark a leaf as trainable (in place). */
  requireGrad(flag = true): this {
    if (!this.isLeaf) throw new ValueError("requireGrad: only leaf tensors can change requiresGrad");
    this.requiresGrad = flag;
    return this;
  }

  /** Release this handle (and, with it, the graph it heads when nothing else uses it). */
  dispose(): void {
    if (this.storageRef === null) return;
    this.storageRef.release();
    this.storageRef = null;
    this.gradFn?.decref();
    this.gradFn = null;
    for (const scope of scopes) scope.delete(this);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(", ")}]${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/** Run `fn` with new tensors joining no tidy scope (used by backward and optimisers). */
export function untracked<T>(fn: () => T): T {
  untrackedDepth++;
  try {
    return fn();
  } finally {
    untrackedDepth--;
  }
}

/** Take a tensor out of every open tidy scope so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of scopes) scope.delete(t);
  return t;
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

/**
 * Run `fn` and dispose every tensor it created, except the tensors in its result (a tensor,
 * array or plain object of them), which move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new ValueError("tidy(fn): fn must be synchronous");
  } catch (error) {
    for (const t of scope) t.dispose(); // nothing of a failed step survives
    throw error;
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) if (!survivors.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of survivors) if (scope.has(t)) parent.add(t);
  return result;
}

// ---- creation ----

/** A new uninitialised tensor. */
export function empty(shape: Shape, backend: Backend = getBackend()): Tensor {
  checkShape(shape, "empty");
  return new Tensor(new Storage(backend, backend.alloc(sizeOf(shape))), shape);
}

/** A tensor from values (copied). Without `shape`, a 1-D tensor. */
export function tensor(values: ArrayLike<number>, shape?: Shape, backend?: Backend): Tensor {
  const s = shape ?? [values.length];
  checkShape(s, "tensor");
  if (sizeOf(s) !== values.length) {
    throw new ShapeError(`tensor: ${values.length} values do not fill shape [${s.join(", ")}] (${sizeOf(s)} elements)`);
  }
  const t = empty(s, backend);
  t.backend.write(t.buffer, values instanceof Float32Array ? values : Float32Array.from(values));
  return t;
}

export function full(shape: Shape, value: number, backend?: Backend): Tensor {
  const t = empty(shape, backend);
  t.backend.fill(t.buffer, value);
  return t;
}

export function zeros(shape: Shape, backend?: Backend): Tensor {
  return full(shape, 0, backend);
}

export function ones(shape: Shape, backend?: Backend): Tensor {
  return full(shape, 1, backend);
}

/** Normal samples from the global seeded stream. */
export function randn(shape: Shape, opts: { mean?: number; std?: number } = {}, backend?: Backend): Tensor {
  const t = empty(shape, backend);
  const { key, counter } = takeDraws(t.size);
  t.backend.randomNormal(t.buffer, opts.mean ?? 0, opts.std ?? 1, key, counter);
  return t;
}

/** Uniform samples in [low, high) from the global seeded stream. */
export function rand(shape: Shape, opts: { low?: number; high?: number } = {}, backend?: Backend): Tensor {
  const t = empty(shape, backend);
  const { key, counter } = takeDraws(t.size);
  t.backend.randomUniform(t.buffer, opts.low ?? 0, opts.high ?? 1, key, counter);
  return t;
}

/** A copy with its own storage, outside the graph. */
export function cloneData(t: Tensor): Tensor {
  const c = empty(t.shape, t.backend);
  c.backend.copy(t.buffer, c.buffer);
  c.dtype = t.dtype;
  return c;
}
