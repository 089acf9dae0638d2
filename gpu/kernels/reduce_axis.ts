/**
 * WGSL for reductions over one axis of x read as [outer, size, inner] into y [outer, inner]
 * (assembly/reduce_axis.ts's semantics): sum (divided by `divisor`: a mean passes the count),
 * max and min keeping the first NaN, else the first extreme value, with its index along the
 * axis written as a float when INDICES is set; and scatter_axis, the backward of the
 * selecting ones. Short axes take one thread per output, long ones a workgroup per output
 * whose threads take every 64th element and then combine their partial results in a tree
 * (ties go to the lower index, so the result is the sequential one).
 */
import { elementwiseKernel, entryPoint, type KernelSpec, NAN_WGSL, read, write } from "../kernel.ts";
import { ROW_WORKGROUP } from "./reduce.ts";

/** Op codes of the OP override of the reduce_axis kernels. */
export const AXIS_REDUCTION_CODES = { sum: 0, max: 1, min: 2 } as const;

/** No element yet (a thread of a workgroup whose share of a short axis is empty). */
const NONE = "0xffffffffu";

const SELECT_HELPERS = `${NAN_WGSL}
/** Does element s, of value v, replace the kept (best, at) in a max (OP 1) or min (OP 2)? */
fn replaces(v: f32, s: u32, best: f32, at: u32) -> bool {
  if (s == ${NONE}) { return false; }
  if (at == ${NONE}) { return true; }
  let vNan = isNan(v);
  let bestNan = isNan(best);
  if (vNan || bestNan) { return vNan && (!bestNan || s < at); }
  if (v == best) { return s < at; }
  if (OP == 1u) { return v > best; }
  return v < best;
}`;

/** The output j's first element in x and the step between its elements. */
const OUTPUT_START = `
  let o = j / P.inner;
  let base = o * P.size * P.inner + j % P.inner;`;

/** Write y[j] (and the index) from (acc, at). */
const STORE = `
  if (OP == 0u) {
    y[j] = acc / P.divisor;
  } else {
    y[j] = acc;
    if (INDICES) { indices[j] = f32(at); }
  }`;

/** Thread-local pass over the elements s = first, first + step, ... of output j. */
const SCAN = `
  var acc = 0.0;
  var at = ${NONE};
  for (var s = first; s < P.size; s = s + step) {
    let v = x[base + s * P.inner];
    if (OP == 0u) { acc = acc + v; } else if (replaces(v, s, acc, at)) { acc = v; at = s; }
  }`;

function reduceAxisKernel(perThread: boolean): KernelSpec {
  const entry = perThread
    ? entryPoint(ROW_WORKGROUP, "j", "P.outputs", `${OUTPUT_START}
  let first = 0u;
  let step = 1u;
  ${SCAN}
  ${STORE}`)
    : `var<workgroup> partial: array<f32, ${ROW_WORKGROUP}>;
var<workgroup> partialAt: array<u32, ${ROW_WORKGROUP}>;
${entryPoint(ROW_WORKGROUP, "j", "P.outputs", `${OUTPUT_START}
  let first = lid;
  let step = ${ROW_WORKGROUP}u;
  ${SCAN}
  partial[lid] = acc;
  partialAt[lid] = at;
  workgroupBarrier();
  for (var half = ${ROW_WORKGROUP / 2}u; half > 0u; half = half >> 1u) {
    if (lid < half) {
      let v = partial[lid + half];
      let s = partialAt[lid + half];
      if (OP == 0u) {
        partial[lid] = partial[lid] + v;
      } else if (replaces(v, s, partial[lid], partialAt[lid])) {
        partial[lid] = v;
        partialAt[lid] = s;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    acc = partial[0];
    at = partialAt[0];
    ${STORE}
  }`, true)}`;
  return {
    key: perThread ? "reduce_axis_thread" : "reduce_axis_workgroup",
    params: [["outputs", "u32"], ["size", "u32"], ["inner", "u32"], ["divisor", "f32"]],
    bindings: [read("x"), write("y"), write("indices")],
    overrides: [["OP", "u32"], ["INDICES", "bool"]],
    code: `${SELECT_HELPERS}\n${entry}`,
  };
}

export const reduceAxisPerThread = reduceAxisKernel(true);
export const reduceAxisPerWorkgroup = reduceAxisKernel(false);

/** dx[o, s, i] = s = indices[o, i] ? dy[o, i] : 0, one thread per element of dx. */
export const scatterAxisKernel = elementwiseKernel(
  "scatter_axis", [["size", "u32"], ["inner", "u32"]], [read("dy"), read("indices"), write("dx")], `
  let slab = P.size * P.inner;
  let k = (i / slab) * P.inner + i % P.inner;
  dx[i] = select(0.0, dy[k], u32(indices[k]) == (i % slab) / P.inner);`,
);
