/**
 * Tensor methods as sugar for the common ops, as PyTorch users expect: `x.add(y)`, `x.mul(2)`,
 * `x.sum([2, 3], true)`, `x.exp()`, `x.max(1).indices`. Each is the op of the same name with
 * the tensor as its first argument (x.where(mask, y) is where(mask, x, y), as in PyTorch).
 * tensor.ts does not import the ops (the layering test keeps it so): this module adds the
 * methods to Tensor's type by declaration merging and to its prototype when it is loaded,
 * which ops/index.ts, and so the public API, does.
 */
import { Tensor } from "../tensor.ts";
import type { Axes } from "./axes.ts";
import { eq, ge, gt, le, lt, maximum, minimum, ne, where } from "./compare.ts";
import { add, div, mul, relu, sigmoid, sub } from "./elementwise.ts";
import { matmul } from "./linalg.ts";
import { amax, amin, argmax, argmin, max, mean, min, sum, type ValuesAndIndices } from "./reduce.ts";
import type { Operand } from "./scalar.ts";
import { flatten, reshape } from "./shape.ts";
import {
  abs, clamp, exp, floor, log, neg, pow, type QuantiseOptions, round, rsqrt, sign, sqrt, square, tanh,
} from "./unary.ts";
import { std, variance, type VarianceOptions } from "./variance.ts";
import { norm } from "./vector_norm.ts";

declare module "../tensor.ts" {
  interface Tensor {
    add(other: Operand): Tensor;
    sub(other: Operand): Tensor;
    mul(other: Operand): Tensor;
    div(other: Operand): Tensor;
    pow(exponent: number): Tensor;
    maximum(other: Operand): Tensor;
    minimum(other: Operand): Tensor;
    eq(other: Operand): Tensor;
    ne(other: Operand): Tensor;
    lt(other: Operand): Tensor;
    le(other: Operand): Tensor;
    gt(other: Operand): Tensor;
    ge(other: Operand): Tensor;
    /** This tensor where mask ≠ 0, else `other`. */
    where(mask: Tensor, other: Operand): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sign(): Tensor;
    neg(): Tensor;
    square(): Tensor;
    tanh(): Tensor;
    relu(): Tensor;
    sigmoid(): Tensor;
    clamp(min?: number | null, max?: number | null): Tensor;
    floor(opts?: QuantiseOptions): Tensor;
    round(opts?: QuantiseOptions): Tensor;
    sum(axes?: Axes, keepdim?: boolean): Tensor;
    mean(axes?: Axes, keepdim?: boolean): Tensor;
    amax(axes?: Axes, keepdim?: boolean): Tensor;
    amin(axes?: Axes, keepdim?: boolean): Tensor;
    max(): Tensor;
    max(axis: number, keepdim?: boolean): ValuesAndIndices;
    min(): Tensor;
    min(axis: number, keepdim?: boolean): ValuesAndIndices;
    argmax(axis: number, keepdim?: boolean): Tensor;
    argmin(axis: number, keepdim?: boolean): Tensor;
    var(axes?: Axes, opts?: VarianceOptions): Tensor;
    std(axes?: Axes, opts?: VarianceOptions): Tensor;
    norm(p?: number, axes?: Axes, keepdim?: boolean): Tensor;
    reshape(shape: Shape): Tensor;
    flatten(): Tensor;
    matmul(other: Tensor): Tensor;
  }
}

/** The ops whose method passes the tensor as the first argument and the method's arguments after it. */
const FIRST_ARGUMENT: Record<string, (x: Tensor, ...args: never[]) => unknown> = {
  add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge,
  exp, log, sqrt, rsqrt, abs, sign, neg, square, tanh, relu, sigmoid, clamp, floor, round,
  sum, mean, amax, amin, max, min, argmax, argmin, var: variance, std, norm, reshape, flatten, matmul,
};

for (const [name, op] of Object.entries(FIRST_ARGUMENT)) {
  const call = op as (x: Tensor, ...args: unknown[]) => unknown;
  Object.defineProperty(Tensor.prototype, name, {
    value(this: Tensor, ...args: unknown[]) {
      return call(this, ...args);
    },
    writable: true,
    configurable: true,
  });
}

Tensor.prototype.where = function (this: Tensor, mask: Tensor, other: Operand): Tensor {
  return where(mask, this, other);
};
