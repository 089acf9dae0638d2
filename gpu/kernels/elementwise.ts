/**
 * WGSL for the one-thread-per-element kernels: fill/scale/axpy, ReLU and sigmoid forward and
 * backward, 4-D strided broadcasting binary ops (arithmetic, maximum/minimum, comparisons) and
 * select (where), dropout, the counter-based random fills and the fused SGD update. Semantics
 * follow assembly/elementwise.ts, random.ts and optim.ts (NaN tested on the bits where it
 * decides a result); every kernel is one `elementwiseKernel` statement over element `i`.
 */
import { elementwiseKernel, EXACT_MULTIPLY_ADD_WGSL, NAN_WGSL, RANDOM_WGSL, read, write } from "../kernel.ts";

export const fillKernel = elementwiseKernel("fill", [["value", "f32"]], [write("y")], "y[i] = P.value;");

export const scaleKernel = elementwiseKernel("scale", [["alpha", "f32"]], [read("x"), write("y")], "y[i] = P.alpha * x[i];");

export const axpyKernel = elementwiseKernel("axpy", [["alpha", "f32"]], [read("x"), write("y")], "y[i] = y[i] + P.alpha * x[i];");

// x <= 0 ? 0 : x, NaN kept; the gradient passes where y is NaN (PyTorch's threshold_backward).
export const reluForwardKernel = elementwiseKernel("relu_forward", [], [read("x"), write("y")],
  "y[i] = reluKeepNan(x[i]);", { helpers: NAN_WGSL });

export const reluBackwardKernel = elementwiseKernel("relu_backward", [], [read("y"), read("dy"), write("dx")],
  "let v = y[i]; dx[i] = select(0.0, dy[i], v > 0.0 || isNan(v));", { helpers: NAN_WGSL });

// exp of a non-positive argument only, so neither branch overflows.
export const sigmoidForwardKernel = elementwiseKernel("sigmoid_forward", [], [read("x"), write("y")], `
  let v = x[i];
  if (v >= 0.0) { y[i] = 1.0 / (1.0 + exp(-v)); } else { let e = exp(v); y[i] = e / (1.0 + e); }`);

export const sigmoidBackwardKernel = elementwiseKernel("sigmoid_backward", [], [read("y"), read("dy"), write("dx")],
  "let v = y[i]; dx[i] = dy[i] * v * (1.0 - v);");

/** Op codes of the OP override of `binaryKernel`. */
export const BINARY_OP_CODES = {
  add: 0, sub: 1, mul: 2, div: 3, maximum: 4, minimum: 5, eq: 6, ne: 7, lt: 8, le: 9, gt: 10, ge: 11,
} as const;

const dims4 = ["d1", "d2", "d3"].map((n) => [n, "u32"] as const);
const strides4 = (p: string) => [0, 1, 2, 3].map((k) => [`${p}${k}`, "u32"] as const);

/** Element `i` of the output [d0,d1,d2,d3] split into its four coordinates. */
const COORDS4 = `
fn coords4(i: u32) -> vec4<u32> {
  let i3 = i % P.d3;
  let r2 = i / P.d3;
  let i2 = r2 % P.d2;
  let r1 = r2 / P.d2;
  return vec4<u32>(r1 / P.d1, r1 % P.d1, i2, i3);
}`;

/**
 * y = a op b with rank-4 broadcast strides (0 on broadcast dims), as Broadcast4 describes.
 * maximum/minimum propagate NaN; a comparison with a NaN operand is 0 (ne: 1).
 */
export const binaryKernel = elementwiseKernel(
  "broadcast_binary", [...dims4, ...strides4("as"), ...strides4("bs")], [read("a"), read("b"), write("y")], `
  let c = coords4(i);
  let va = a[c.x * P.as0 + c.y * P.as1 + c.z * P.as2 + c.w * P.as3];
  let vb = b[c.x * P.bs0 + c.y * P.bs1 + c.z * P.bs2 + c.w * P.bs3];
  let anyNan = isNan(va) || isNan(vb);
  var r: f32;
  switch OP {
    case 0u: { r = va + vb; }
    case 1u: { r = va - vb; }
    case 2u: { r = va * vb; }
    case 3u: { r = va / vb; }
    case 4u: { r = select(max(va, vb), nanFrom(va), anyNan); }
    case 5u: { r = select(min(va, vb), nanFrom(va), anyNan); }
    case 6u: { r = select(0.0, 1.0, !anyNan && va == vb); }
    case 7u: { r = select(0.0, 1.0, anyNan || va != vb); }
    case 8u: { r = select(0.0, 1.0, !anyNan && va < vb); }
    case 9u: { r = select(0.0, 1.0, !anyNan && va <= vb); }
    case 10u: { r = select(0.0, 1.0, !anyNan && va > vb); }
    default: { r = select(0.0, 1.0, !anyNan && va >= vb); }
  }
  y[i] = r;`,
  { helpers: COORDS4 + NAN_WGSL, overrides: [["OP", "u32"]] },
);

/** y = cond ≠ 0 ? a : b (a NaN condition selects a) with rank-4 broadcast strides, as BroadcastSelect describes. */
export const whereKernel = elementwiseKernel(
  "broadcast_where", [...dims4, ...strides4("cs"), ...strides4("as"), ...strides4("bs")],
  [read("cond"), read("a"), read("b"), write("y")], `
  let c = coords4(i);
  let m = cond[c.x * P.cs0 + c.y * P.cs1 + c.z * P.cs2 + c.w * P.cs3];
  if (isNan(m) || m != 0.0) {
    y[i] = a[c.x * P.as0 + c.y * P.as1 + c.z * P.as2 + c.w * P.as3];
  } else {
    y[i] = b[c.x * P.bs0 + c.y * P.bs1 + c.z * P.bs2 + c.w * P.bs3];
  }`,
  { helpers: COORDS4 + NAN_WGSL },
);

/** mask = uniform ≥ p ? keep : 0 (keep = 1/(1−p), rounded once on the host); y = x·mask. */
export const dropoutKernel = elementwiseKernel(
  "dropout_forward", [["p", "f32"], ["keep", "f32"], ["mixedKey", "u32"], ["counter", "u32"]],
  [read("x"), write("y"), write("mask")], `
  let m = select(0.0, P.keep, uniform24(P.mixedKey, P.counter + i) >= P.p);
  mask[i] = m;
  y[i] = x[i] * m;`,
  { helpers: RANDOM_WGSL },
);

/**
 * lo + span·u with one rounding, like the CPU's f64 evaluation rounded to f32 (bit-identical
 * whenever that f64 evaluation is exact, e.g. symmetric or zero-based bounds); span = hi − lo
 * is rounded on the host.
 */
export const randomUniformKernel = elementwiseKernel(
  "random_uniform", [["lo", "f32"], ["span", "f32"], ["mixedKey", "u32"], ["counter", "u32"], ["one", "f32"]], [write("y")],
  "y[i] = exactMultiplyAdd(P.span, uniform24(P.mixedKey, P.counter + i), P.lo);",
  { helpers: RANDOM_WGSL + EXACT_MULTIPLY_ADD_WGSL },
);

/** 1 where uniform(key, counter + i) < p, else 0: the CPU's float32 comparison, so the same bits. */
export const randomBernoulliKernel = elementwiseKernel(
  "random_bernoulli", [["p", "f32"], ["mixedKey", "u32"], ["counter", "u32"]], [write("y")],
  "y[i] = select(0.0, 1.0, uniform24(P.mixedKey, P.counter + i) < P.p);",
  { helpers: RANDOM_WGSL },
);

/**
 * Box–Muller, one thread per pair j (P.n is the number of pairs): elements 2j and 2j+1 use
 * counters counter+2j (u1 = 1 − u, never 0) and counter+2j+1, as assembly/random.ts does.
 */
export const randomNormalKernel = elementwiseKernel(
  "random_normal", [["length", "u32"], ["mean", "f32"], ["stddev", "f32"], ["mixedKey", "u32"], ["counter", "u32"]],
  [write("y")], `
  let e = 2u * i;
  let c = P.counter + e;
  let u1 = 1.0 - uniform24(P.mixedKey, c);
  let u2 = uniform24(P.mixedKey, c + 1u);
  let r = sqrt(-2.0 * log(u1));
  let t = 6.283185307179586 * u2;
  y[e] = P.mean + P.stddev * r * cos(t);
  if (e + 1u < P.length) { y[e + 1u] = P.mean + P.stddev * r * sin(t); }`,
  { helpers: RANDOM_WGSL },
);

/**
 * torch.optim.SGD over the parameters of a step laid end to end (gpu/sgd.ts): weight decay,
 * momentum with dampening, Nesterov. Elements below firstEnd belong to parameters on their
 * first step, whose momentum starts as the gradient instead of being read.
 */
export const sgdKernel = elementwiseKernel(
  "sgd_update",
  [["lr", "f32"], ["momentum", "f32"], ["damp", "f32"], ["weightDecay", "f32"], ["useMomentum", "u32"],
    ["nesterov", "u32"], ["firstEnd", "u32"]],
  [write("param"), read("grad"), write("buf")], `
  let p = param[i];
  var d = grad[i];
  if (P.weightDecay != 0.0) { d = d + P.weightDecay * p; }
  if (P.useMomentum != 0u) {
    var b = d;
    if (i >= P.firstEnd) { b = P.momentum * buf[i] + P.damp * d; }
    buf[i] = b;
    d = select(b, d + P.momentum * b, P.nesterov != 0u);
  }
  param[i] = p - P.lr * d;`,
);
