/**
 * Parameters as vectors, for the probes: a model's parameters by their state-dict names (a
 * `ParamMap`) treated as one long vector, with the few operations the probes need — a copy
 * (the weights before an update), w + a·v, and inner products and norms over the whole vector
 * or per tensor. Everything stays on the device and off the tape; an inner product is summed
 * per tensor there and the tensors' sums are added here in float64, so only one number per
 * tensor is read back.
 */
import { noGrad } from "../autograd.ts";
import { cloneData, keep, type Tensor, tidy } from "../tensor.ts";
import { mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import type { Module } from "../nn/module.ts";

/** Tensors by parameter name (a state dict's parameters). */
export type ParamMap = ReadonlyMap<string, Tensor>;

/** A copy of every parameter of `model`, outside the graph and every tidy scope (free it with disposeParams). */
export function snapshotParameters(model: Module): Map<string, Tensor> {
  return new Map([...model.namedParameters()].map(([name, p]) => [name, keep(cloneData(p))]));
}

export function disposeParams(params: ParamMap): void {
  for (const t of params.values()) t.dispose();
}

/** w + a·v for every tensor of `w` (v must hold the same names), as new tensors kept out of tidy scopes. */
export function axpy(w: ParamMap, a: number, v: ParamMap): Map<string, Tensor> {
  return new Map([...w].map(([name, t]) => [name, keep(cloneData(t).add_(v.get(name)!, a))]));
}

/** Σ x·y for each named tensor (names of `x`), summed on the device and read back. */
export async function dotsPerTensor(x: ParamMap, y: ParamMap): Promise<Map<string, number>> {
  const sums = noGrad(() => tidy(() => [...x].map(([name, t]) => [name, sum(mul(t, y.get(name)!))] as const)));
  const values = await Promise.all(sums.map(([, s]) => s.data()));
  sums.forEach(([, s]) => s.dispose());
  return new Map(sums.map(([name], i) => [name, values[i][0]]));
}

/** Σ x·y over the whole vector, in float64 over the tensors' sums. */
export async function dot(x: ParamMap, y: ParamMap): Promise<number> {
  let total = 0;
  for (const v of (await dotsPerTensor(x, y)).values()) total += v;
  return total;
}

/** ‖x‖₂ over the whole vector. */
export async function norm(x: ParamMap): Promise<number> {
  return Math.sqrt(await dot(x, x));
}

/** x − y (names of x), new tensors kept out of tidy scopes. */
export function difference(x: ParamMap, y: ParamMap): Map<string, Tensor> {
  return axpy(x, -1, y);
}

/** a·x, new tensors kept out of tidy scopes. */
export function scaled(x: ParamMap, a: number): Map<string, Tensor> {
  return new Map([...x].map(([name, t]) => [name, keep(cloneData(t).mul_(a))]));
}
