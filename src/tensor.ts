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

// Symbol.dispose for `using` (TypeScript 5.2, esbuild): Node 20 and older browsers lack it. Any
// symbol works as long as it is the one the compiled `using` looks up, which is this global.
(Symbol as { dispose?: symbol }).dispose ??= Symbol.for("Symbol.dispose");

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

/**
 * What a tensor knows of the tape node that produced it (autograd.ts's Node): its name, and
 * that the tensor's handle must be let go when the tensor is disposed. The rest of the tape
 * is autograd's business, so this file does not depend on it.
 */
export interface TapeNode {
  readonly name: string;
  decref(): void;
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
  gradFn: TapeNode | null = null;
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

  // ---- in place (PyTorch's trailing underscore): outside the tape, for state that ops do not
  // own (parameters in an optimiser step, buffers, initialisation, loading).

  /** Set every element to `value`. */
  fill_(value: number): this {
    this.backend.fill(this.buffer, value);
    return this;
  }

  zero_(): this {
    return this.fill_(0);
  }

  /** Copy `source`'s values in (any backend; the element counts must match). */
  copy_(source: Tensor): this {
    if (source.size !== this.size) {
      throw new ShapeError(`copy_: source [${source.shape.join(", ")}] has ${source.size} elements, this tensor [${this.shape.join(", ")}] ${this.size}`);
    }
    if (source.backend === this.backend) this.backend.copy(source.buffer, this.buffer);
    else this.backend.write(this.buffer, source.dataSync());
    return this;
  }

  /** this += alpha·other (same element count, same backend). */
  add_(other: Tensor, alpha = 1): this {
    this.checkOperand("add_", other);
    this.backend.axpy(alpha, other.buffer, this.buffer);
    return this;
  }

  /** this ·= factor. */
  mul_(factor: number): this {
    this.backend.scale(this.buffer, this.buffer, factor);
    return this;
  }

  /** Uniform draws in [low, high) from the global seeded stream. */
  uniform_(low = 0, high = 1): this {
    this.backend.random(this.buffer, { kind: "uniform", low, high }, takeDraws(this.size));
    return this;
  }

  /** Normal draws from the global seeded stream. */
  normal_(mean = 0, std = 1): this {
    this.backend.random(this.buffer, { kind: "normal", mean, std }, takeDraws(this.size));
    return this;
  }

  /** Bernoulli draws from the global seeded stream: 1 with probability p, else 0. */
  bernoulli_(p = 0.5): this {
    if (!(p >= 0 && p <= 1)) throw new ValueError(`bernoulli_: p must be in [0, 1], got ${p}`);
    this.backend.random(this.buffer, { kind: "bernoulli", p }, takeDraws(this.size));
    return this;
  }

  private checkOperand(op: string, other: Tensor): void {
    if (other.size !== this.size) {
      throw new ShapeError(`${op}: operand [${other.shape.join(", ")}] does not match [${this.shape.join(", ")}]`);
    }
    if (other.backend !== this.backend) {
      throw new ShapeError(`${op}: operands live on different backends (${this.backend.name} and ${other.backend.name})`);
    }
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

  /** `using t = ...` disposes t at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
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

/**
 * Run `fn` with new tensors joining the open tidy scopes again, also inside untracked(): for
 * work in the backward pass that cleans up after itself with tidy (a recomputed forward).
 */
export function tracked<T>(fn: () => T): T {
  const depth = untrackedDepth;
  untrackedDepth = 0;
  try {
    return fn();
  } finally {
    untrackedDepth = depth;
  }
}

/** Put a tensor made outside any scope (by the backward pass) into the innermost open one. */
export function track<T extends Tensor>(t: T): T {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
  return t;
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
  return empty(shape, backend).fill_(value);
}

export function zeros(shape: Shape, backend?: Backend): Tensor {
  return full(shape, 0, backend);
}

export function ones(shape: Shape, backend?: Backend): Tensor {
  return full(shape, 1, backend);
}

/** Normal samples from the global seeded stream. */
export function randn(shape: Shape, opts: { mean?: number; std?: number } = {}, backend?: Backend): Tensor {
  return empty(shape, backend).normal_(opts.mean, opts.std);
}

/** Uniform samples in [low, high) from the global seeded stream. */
export function rand(shape: Shape, opts: { low?: number; high?: number } = {}, backend?: Backend): Tensor {
  return empty(shape, backend).uniform_(opts.low, opts.high);
}

/** Bernoulli samples (1 with probability p, else 0) from the global seeded stream. */
export function bernoulli(shape: Shape, p = 0.5, backend?: Backend): Tensor {
  return empty(shape, backend).bernoulli_(p);
}

/** A copy with its own storage, outside the graph. */
export function cloneData(t: Tensor): Tensor {
  const c = empty(t.shape, t.backend).copy_(t);
  c.dtype = t.dtype;
  return c;
}
