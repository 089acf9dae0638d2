/**
 * What the model-zoo files share: running a list of steps while freeing each intermediate,
 * BatchNorm → ReLU as one fused op where no hook needs the modules one by one, torchvision's
 * weight initialisation pass, and the option checks every factory makes so a bad option
 * fails at construction with a ValueError naming the factory and the option.
 */
import { ValueError } from "../../errors.ts";
import type { Tensor } from "../../tensor.ts";
import { add, relu } from "../../ops/elementwise.ts";
import { reshape } from "../../ops/shape.ts";
import type { Module } from "../module.ts";
import { BatchNorm2d, Conv2d } from "../layers.ts";
import { constant_, kaimingNormal_ } from "../init.ts";

/** One stage of a forward pass: consumes a tensor, returns a new one. */
export type Step = (t: Tensor) => Tensor;

/**
 * A step that calls `m.forward` at run time (not a bound copy), so forward hooks installed
 * on `m` after the model was built still run.
 */
export function stepOf(m: Module): Step {
  return (t) => m.forward(t);
}

/**
 * Run `steps` in order, disposing each intermediate once the next step has consumed it (the
 * autograd graph keeps what backward needs). `x` belongs to the caller and is never
 * disposed; with no steps, a new handle on `x` is returned so the result is always ours.
 */
export function chain(x: Tensor, steps: readonly Step[]): Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x) h.dispose();
    h = next;
  }
  return h === x ? reshape(x, x.shape) : h;
}

/**
 * relu(residual + bn(x)), residual optional: BatchNorm2d.forwardRelu's fused op, unless `bn`
 * or `act` (the model's ReLU module, where it has one) has hooks. Then the modules run one
 * after the other, so each hook sees its own module's input, output and gradients. The
 * numbers are the same either way (bitwise on the CPU backend).
 */
export function bnRelu(bn: BatchNorm2d, x: Tensor, residual: Tensor | null = null, act: Module | null = null): Tensor {
  if (!bn.hasHooks && !act?.hasHooks) return bn.forwardRelu(x, residual);
  const normalised = bn.forward(x);
  const sum = residual ? add(residual, normalised) : normalised;
  const y = act ? act.forward(sum) : relu(sum);
  normalised.dispose();
  if (sum !== normalised) sum.dispose();
  return y;
}

/**
 * torchvision's init for ReLU convnets: every Conv2d weight He-normal with fan_out, every
 * BatchNorm γ = 1 and β = 0. Conv biases are zeroed only when asked (torchvision's VGG does,
 * its ResNet has no conv biases to touch).
 */
export function initConvNet(model: Module, opts: { zeroConvBias?: boolean } = {}): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d) {
      kaimingNormal_(m.weight, "fanOut");
      if (opts.zeroConvBias && m.bias) constant_(m.bias, 0);
    } else if (m instanceof BatchNorm2d) {
      constant_(m.weight, 1);
      constant_(m.bias, 0);
    }
  }
}

// ---- option checks ----

/**
 * The options object itself: undefined means "all defaults"; anything but a plain object,
 * or a key the factory does not know (a typo such as `numClass`), is rejected rather than
 * silently ignored.
 */
export function checkOptionKeys<T extends object>(where: string, opts: T | undefined, known: readonly string[]): T {
  if (opts === undefined) return {} as T;
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new ValueError(`${where}: options must be an object, got ${describe(opts)}`);
  }
  const unknown = Object.keys(opts).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new ValueError(`${where}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; known: ${known.join(", ")}`);
  }
  return opts;
}

export function positiveInt(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new ValueError(`${where}: ${name} must be a positive integer, got ${describe(v)}`);
  }
  return v;
}

export function positiveIntList(where: string, name: string, v: unknown, opts: { allowEmpty?: boolean } = {}): number[] {
  if (!Array.isArray(v) || (v.length === 0 && !opts.allowEmpty)) {
    throw new ValueError(`${where}: ${name} must be a${opts.allowEmpty ? "n" : " non-empty"} array of positive integers, got ${describe(v)}`);
  }
  return v.map((d, i) => positiveInt(where, `${name}[${i}]`, d));
}

export function oneOf<T extends string>(where: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) {
    throw new ValueError(`${where}: ${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${describe(v)}`);
  }
  return v as T;
}

export function bool(where: string, name: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new ValueError(`${where}: ${name} must be true or false, got ${describe(v)}`);
  return v;
}

/**
 * A width multiplier: a finite number > 0 that scales a model's layer widths (1: the published
 * architecture). Checked here so every factory rejects the same bad values with the same words.
 */
export function widthMultiplier(where: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ValueError(`${where}: widthMultiplier must be a finite number > 0, got ${describe(v)}`);
  }
  return v;
}

/**
 * A layer width times the multiplier, rounded to the nearest integer and at least 1, so a
 * narrow net keeps every layer (ResNet-20's 16/32/64 channels at 0.125: 2/4/8).
 */
export function scaleWidth(width: number, multiplier: number): number {
  return Math.max(1, Math.round(width * multiplier));
}

/** A dropout probability: PyTorch's nn.Dropout accepts p in [0, 1); p = 1 would zero everything. */
export function probability(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new ValueError(`${where}: ${name} must be a number in [0, 1), got ${describe(v)}`);
  }
  return v;
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(describe).join(", ")}]`;
  if (v === null || typeof v !== "object") return String(v);
  return "an object";
}
