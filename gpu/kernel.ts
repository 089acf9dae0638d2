/**
 * How a WGSL compute kernel is described, and the WGSL that every kernel shares. A kernel is
 * a `KernelSpec`: its uniform parameters (name and scalar type, in order), its storage
 * bindings, and the WGSL of its entry point. The uniform struct and the binding declarations
 * are generated from the spec, so the TypeScript side that packs the uniforms and the WGSL
 * side that reads them can never disagree about the layout. Pure strings: no GPU calls here.
 */

export type ScalarType = "u32" | "i32" | "f32";

export interface StorageBinding {
  readonly name: string;
  /** The element type the shader sees (the buffer itself is untyped: i32 views hold labels and argmax). */
  readonly element: "f32" | "i32";
  readonly writable: boolean;
}

export interface KernelSpec {
  /** Unique name: the shader-module and layout cache key. */
  readonly key: string;
  /** Uniform fields, packed in this order as 4-byte scalars into the struct `P`. */
  readonly params: readonly (readonly [string, ScalarType])[];
  /** Storage buffers at bindings 1, 2, ... (binding 0 is the uniform struct). */
  readonly bindings: readonly StorageBinding[];
  /** Pipeline-overridable constants the code declares (`override NAME: T;`), with their types. */
  readonly overrides?: readonly (readonly [string, "u32" | "f32" | "bool"])[];
  /** WGSL after the generated declarations: helpers and a `@compute fn main`. */
  readonly code: string;
}

export const read = (name: string, element: "f32" | "i32" = "f32"): StorageBinding => ({ name, element, writable: false });
export const write = (name: string, element: "f32" | "i32" = "f32"): StorageBinding => ({ name, element, writable: true });

/** Bytes of the uniform struct of `spec` (16-byte multiple, as uniform buffers require). */
export function uniformBytes(spec: KernelSpec): number {
  return Math.max(16, Math.ceil((spec.params.length * 4) / 16) * 16);
}

/** The full WGSL module text of a kernel. */
export function shaderSource(spec: KernelSpec): string {
  const fields = spec.params.length > 0
    ? spec.params.map(([name, type]) => `  ${name}: ${type},`).join("\n")
    : "  unused: u32,";
  const overrides = (spec.overrides ?? []).map(([name, type]) => `override ${name}: ${type};`).join("\n");
  const bindings = spec.bindings.map((b, i) =>
    `@group(0) @binding(${i + 1}) var<storage, ${b.writable ? "read_write" : "read"}> ${b.name}: array<${b.element}>;`
  ).join("\n");
  return `struct Params {\n${fields}\n}\n@group(0) @binding(0) var<uniform> P: Params;\n${bindings}\n${overrides}\n${spec.code}`;
}

/** Threads per workgroup of the one-dimensional (elementwise) kernels. */
export const LINEAR_WORKGROUP = 256;

/**
 * The builtins every kernel's entry point takes. Grids wider than the per-dimension limit
 * (65535 workgroups) fold into y, so a flat workgroup number is `wid.y * nwg.x + wid.x`.
 */
export const ENTRY_ARGS = `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

/**
 * The entry point of a kernel that runs `body` once per index `index` < `count` (a WGSL
 * expression): one thread per index in workgroups of `size` threads, or, `perWorkgroup`, all
 * `size` threads of one workgroup per index (the body then shares the work out by `lid`).
 * The early return depends on the workgroup alone in the second form, so barriers stay legal.
 */
export function entryPoint(size: number, index: string, count: string, body: string, perWorkgroup = false): string {
  const flat = perWorkgroup ? "wid.y * nwg.x + wid.x" : `(wid.y * nwg.x + wid.x) * ${size}u + lid`;
  return `@compute @workgroup_size(${size})
fn main(${ENTRY_ARGS}) {
  let ${index} = ${flat};
  if (${index} >= ${count}) { return; }
  ${body}
}`;
}

/**
 * A kernel with one thread per element i < P.n (P.n must be the first parameter):
 * `statement` is the WGSL body for element `i`, `helpers` any functions it calls.
 */
export function elementwiseKernel(
  key: string, params: readonly (readonly [string, ScalarType])[], bindings: readonly StorageBinding[],
  statement: string, extra: { helpers?: string; overrides?: KernelSpec["overrides"] } = {},
): KernelSpec {
  return {
    key,
    params: [["n", "u32"], ...params],
    bindings,
    overrides: extra.overrides,
    code: `${extra.helpers ?? ""}
${entryPoint(LINEAR_WORKGROUP, "i", "P.n", statement)}`,
  };
}

/**
 * Workgroup reductions over `size` threads (a power of two): `wgSum(v, lid)` and
 * `wgMax(v, lid)` return the reduction of every thread's `v` to all threads. They contain
 * barriers, so call them from uniform control flow (every thread of the workgroup).
 */
export function workgroupReductions(size: number): string {
  const reduction = (name: string, combine: (a: string, b: string) => string) => `
fn ${name}(v: f32, lid: u32) -> f32 {
  scratch[lid] = v;
  workgroupBarrier();
  for (var s = ${size / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { scratch[lid] = ${combine("scratch[lid]", "scratch[lid + s]")}; }
    workgroupBarrier();
  }
  let r = scratch[0];
  workgroupBarrier();
  return r;
}`;
  return `var<workgroup> scratch: array<f32, ${size}>;
${reduction("wgSum", (a, b) => `${a} + ${b}`)}
${reduction("wgMax", (a, b) => `max(${a}, ${b})`)}`;
}

/**
 * NaN tests on the bits, NaN itself, and the ReLU built on them (x <= 0 ? 0 : x, NaN kept, as
 * in PyTorch and assembly/elementwise.ts). WGSL lets a compiler assume that no float is NaN,
 * and lavapipe's does fold comparisons accordingly, so `v != v` cannot be trusted to see one;
 * a kernel that must propagate or detect NaN tests the bits. A NaN (or infinite) constant is
 * an error in WGSL (Chromium's compiler rejects `bitcast<f32>(0x7fc00000u)`), so NaN is made
 * from a run-time value.
 */
export const NAN_WGSL = `
fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn nanFrom(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) | 0x7fc00000u); }
fn reluKeepNan(v: f32) -> f32 { return select(0.0, v, v > 0.0 || isNan(v)); }`;

/** The counter-based hash of src/random.ts and assembly/random.ts, in u32 arithmetic (exact). */
export const RANDOM_WGSL = `
fn mix32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  x = x ^ (x >> 16u);
  return x;
}
/** uniform(key, i) with mixedKey = mix32(key ^ 0x9E3779B9): 24 random bits as a float in [0, 1). */
fn uniform24(mixedKey: u32, i: u32) -> f32 {
  return f32(mix32(mixedKey + i) >> 8u) * 5.9604644775390625e-8;
}`;

/**
 * a·b + c rounded once to f32, from error-free transforms (Dekker/Knuth) in plain f32
 * arithmetic: WGSL's fma() may round twice, and the CPU's random_uniform rounds once (its f64
 * evaluation is exact for the usual bounds). With (s, t) = c + fl(a·b) and the product error
 * e, the exact value is s + w + wErr with (w, wErr) = t + e; s + w rounds correctly except at
 * an exact tie, which wErr then breaks. The kernel needs a uniform `one` (= 1).
 */
export const EXACT_MULTIPLY_ADD_WGSL = `
fn twoSum(a: f32, b: f32) -> vec2<f32> {
  // P.one is 1 at run time but opaque to the compiler, which would otherwise cancel
  // (a − (s − (s − a))) + (b − (s − a)) to 0 under fast-math reassociation (lavapipe does).
  let s = (a + b) * P.one;
  let bv = s - a;
  return vec2<f32>(s, (a - (s - bv)) + (b - bv));
}
/** a = high + low with 12 significant bits each (a bit mask: immune to algebraic rewriting). */
fn splitHalves(a: f32) -> vec2<f32> {
  let h = bitcast<f32>(bitcast<u32>(a) & 0xfffff000u);
  return vec2<f32>(h, a - h);
}
fn twoProduct(a: f32, b: f32) -> vec2<f32> {
  let p = a * b;
  let x = splitHalves(a);
  let y = splitHalves(b);
  return vec2<f32>(p, ((x.x * y.x - p) + x.x * y.y + x.y * y.x) + x.y * y.y);
}
fn exactMultiplyAdd(a: f32, b: f32, c: f32) -> f32 {
  let pe = twoProduct(a, b);
  let st = twoSum(c, pe.x);
  let w = twoSum(st.y, pe.y);
  let rd = twoSum(st.x, w.x);
  let r = rd.x;
  let d = rd.y;
  if (d == 0.0 || w.y == 0.0 || r == 0.0 || (d > 0.0) != (w.y > 0.0)) { return r; }
  // The neighbour of r on d's side; a tie is |d| = half the gap to it.
  let bits = bitcast<u32>(r);
  let next = bitcast<f32>(select(bits - 1u, bits + 1u, (r > 0.0) == (d > 0.0)));
  if (2.0 * abs(d) == abs(next - r)) { return next; }
  return r;
}`;

