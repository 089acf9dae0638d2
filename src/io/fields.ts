/**
 * Typed reads of untrusted JSON: checkpoint metadata and run configuration files, which a
 * crash may have torn or a user may have edited. Each read checks the type and range of one
 * field and otherwise throws a CheckpointError naming the file, the field's path and what
 * it held ("run/checkpoint.safetensors: position.epoch must be an integer in [0, ...], got
 * \"x\""), so nothing malformed reaches the training loop.
 */
import { CheckpointError } from "../errors.ts";
import { describeValue } from "./describe.ts";

export class Fields {
  private constructor(
    private readonly value: Record<string, unknown>,
    /** The file, for messages. */
    readonly source: string,
    /** The path of this object inside the file ("" at the top, else ending in "."). */
    readonly path: string,
  ) {}

  /** The fields of `value`, which must be a JSON object; `path` names it in messages. */
  static of(value: unknown, source: string, path = ""): Fields {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new CheckpointError(`${source}: ${path.replace(/\.$/, "") || "the content"} must be an object, got ${describeValue(value)}`);
    }
    return new Fields(value as Record<string, unknown>, source, path);
  }

  /** Throw a CheckpointError about field `name`: it `must` be something else. */
  fail(name: string, must: string): never {
    throw new CheckpointError(`${this.source}: ${this.path}${name} must be ${must}, got ${describeValue(this.value[name])}`);
  }

  has(name: string): boolean {
    return Object.hasOwn(this.value, name) && this.value[name] !== undefined;
  }

  int(name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.value[name];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      this.fail(name, max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`);
    }
    return v as number;
  }

  /** A number in [min, max]; `finite: false` also lets NaN and ±Infinity through (metric values). */
  number(name: string, { min = -Infinity, max = Infinity, finite = true } = {}): number {
    const v = this.value[name];
    const ok = typeof v === "number" && (Number.isFinite(v) ? v >= min && v <= max : !finite);
    if (!ok) this.fail(name, finite ? `a finite number in [${min}, ${max}]` : "a number");
    return v as number;
  }

  string<T extends string>(name: string, choices?: readonly T[]): T {
    const v = this.value[name];
    if (typeof v !== "string" || (choices && !choices.includes(v as T))) {
      this.fail(name, choices ? `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}` : "a string");
    }
    return v as T;
  }

  boolean(name: string): boolean {
    const v = this.value[name];
    if (typeof v !== "boolean") this.fail(name, "true or false");
    return v;
  }

  /** An array of finite numbers, of `length` when given. */
  numbers(name: string, length?: number): number[] {
    const v = this.value[name];
    if (!Array.isArray(v) || (length !== undefined && v.length !== length) || !v.every(Number.isFinite)) {
      this.fail(name, `an array of ${length ?? "any number of"} finite numbers`);
    }
    return v as number[];
  }

  /** An array of strings. */
  strings(name: string): string[] {
    const v = this.value[name];
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) this.fail(name, "an array of strings");
    return v as string[];
  }

  /** An object of numbers by name (metrics: NaN and ±Infinity allowed). */
  numberRecord(name: string): Record<string, number> {
    const f = this.object(name);
    return Object.fromEntries(Object.keys(f.value).map((key) => [key, f.number(key, { finite: false })]));
  }

  object(name: string): Fields {
    return Fields.of(this.value[name], this.source, `${this.path}${name}.`);
  }

  /** The fields of each element of an array of objects. */
  objects(name: string): Fields[] {
    const v = this.value[name];
    if (!Array.isArray(v)) this.fail(name, "an array");
    return v.map((item, i) => Fields.of(item, this.source, `${this.path}${name}[${i}].`));
  }
}
