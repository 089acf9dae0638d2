/**
 * The option checks that layers and model factories make, so a bad option fails at
 * construction with a ValueError naming the layer or factory and the option.
 */
import { ValueError } from "../errors.ts";

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
