/**
 * WGSL for the unary ops of the generic tier, forward and backward: one kernel each, the op
 * chosen by the OP override (codes below) and the two scalars p0, p1 (pow's exponent and
 * exponent − 1, or clamp's bounds), with assembly/unary.ts's semantics (PyTorch's). WGSL
 * leaves builtins undefined or loose at the edges (NaN may be assumed away, exp/log/pow/
 * division are indeterminate at zero, infinity or overflow, tanh is sinh/cosh), so every op
 * decides its special values itself, on the bits where NaN is involved; tanh is computed from
 * exp away from zero and by its series near it.
 */
import { elementwiseKernel, NAN_WGSL, read, write } from "../kernel.ts";

/** Op codes of the OP override (the order of UNARY_OPS in src/backend/backend.ts). */
export const UNARY_OP_CODES = {
  exp: 0, log: 1, sqrt: 2, rsqrt: 3, abs: 4, sign: 5, neg: 6, square: 7, pow: 8, clamp: 9, floor: 10, round: 11, tanh: 12,
} as const;

const UNARY_HELPERS = `${NAN_WGSL}
fn isInf(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) == 0x7f800000u; }
fn signBit(v: f32) -> bool { return (bitcast<u32>(v) & 0x80000000u) != 0u; }
/** |m| with the sign of s. */
fn withSign(m: f32, s: f32) -> f32 { return bitcast<f32>((bitcast<u32>(m) & 0x7fffffffu) | (bitcast<u32>(s) & 0x80000000u)); }
/** Infinity with the sign of s (made at run time: an infinite constant is an error in WGSL). */
fn infinity(s: f32) -> f32 { return bitcast<f32>((bitcast<u32>(s) & 0x80000000u) | 0x7f800000u); }
/** The sign bit of a·b, as a float (±1). */
fn productSign(a: f32, b: f32) -> f32 { return bitcast<f32>(((bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u) | 0x3f800000u); }
/** sgn(v) for real v, 0 for NaN (torch.sgn). */
fn sgn(v: f32) -> f32 {
  if (isNan(v)) { return 0.0; }
  return select(select(0.0, -1.0, v < 0.0), 1.0, v > 0.0);
}
/** a / b with IEEE's values where WGSL's division is indeterminate (b zero, infinite or NaN). */
fn divide(a: f32, b: f32) -> f32 {
  if (isNan(a) || isNan(b)) { return nanFrom(a); }
  if (b == 0.0) {
    if (a == 0.0) { return nanFrom(a); }
    return infinity(productSign(a, b));
  }
  if (isInf(b)) {
    if (isInf(a)) { return nanFrom(a); }
    return withSign(0.0, productSign(a, b));
  }
  return a / b;
}
fn expOf(v: f32) -> f32 {
  if (isNan(v)) { return v; }
  if (v > 88.72284) { return infinity(v); }
  if (v < -103.97208) { return 0.0; }
  return exp(v);
}
fn logOf(v: f32) -> f32 {
  if (isNan(v) || v < 0.0) { return nanFrom(v); }
  if (v == 0.0) { return infinity(-1.0); }
  if (isInf(v)) { return v; }
  return log(v);
}
fn sqrtOf(v: f32) -> f32 {
  if (isNan(v) || v < 0.0) { return nanFrom(v); }
  if (v == 0.0 || isInf(v)) { return v; }
  return sqrt(v);
}
fn rsqrtOf(v: f32) -> f32 { return divide(1.0, sqrtOf(v)); }
fn isOddInteger(p: f32) -> bool { return floor(p) == p && abs(p) < 16777216.0 && (i32(p) & 1) != 0; }
/** C's powf(v, p) for an exponent without a fast path. */
fn generalPow(v: f32, p: f32) -> f32 {
  let a = abs(v);
  var r: f32;
  if (a == 0.0) { r = select(infinity(1.0), 0.0, p > 0.0); }
  else if (isInf(a)) { r = select(0.0, infinity(1.0), p > 0.0); }
  else { r = pow(a, p); }
  if (signBit(v)) {
    if (isOddInteger(p)) { r = -r; }
    else if (floor(p) != p && a != 0.0 && !isInf(a)) { r = nanFrom(v); }
  }
  return r;
}
/** v^p with PyTorch's fast paths (p = 0 gives 1, even for NaN). */
fn powOf(v: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (isNan(v)) { return v; }
  if (p == 1.0) { return v; }
  if (p == 0.5) { return sqrtOf(v); }
  if (p == 2.0) { return v * v; }
  if (p == 3.0) { return v * v * v; }
  if (p == -0.5) { return rsqrtOf(v); }
  if (p == -1.0) { return divide(1.0, v); }
  if (p == -2.0) { return divide(1.0, v * v); }
  return generalPow(v, p);
}
fn tanhOf(v: f32) -> f32 {
  if (isNan(v)) { return v; }
  let a = abs(v);
  var t: f32;
  if (a < 0.125) {
    let s = a * a;
    t = a * (1.0 + s * (-0.33333333 + s * (0.13333333 + s * -0.053968254)));
  } else if (a > 9.0) {
    t = 1.0;
  } else {
    t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  }
  return withSign(t, v);
}`;

const FORWARD = `
  let v = x[i];
  var r: f32;
  switch OP {
    case 0u: { r = expOf(v); }
    case 1u: { r = logOf(v); }
    case 2u: { r = sqrtOf(v); }
    case 3u: { r = rsqrtOf(v); }
    case 4u: { r = abs(v); }
    case 5u: { r = sgn(v); }
    case 6u: { r = -v; }
    case 7u: { r = v * v; }
    case 8u: { r = powOf(v, P.p0); }
    case 9u: { r = select(min(max(v, P.p0), P.p1), v, isNan(v)); }
    case 10u: { r = select(floor(v), v, isNan(v)); }
    case 11u: { r = select(round(v), v, isNan(v)); }
    default: { r = tanhOf(v); }
  }
  y[i] = r;`;

/** y = op(x) (codes: UNARY_OP_CODES). */
export const unaryForwardKernel = elementwiseKernel(
  "unary_forward", [["p0", "f32"], ["p1", "f32"]], [read("x"), write("y")], FORWARD,
  { helpers: UNARY_HELPERS, overrides: [["OP", "u32"]] },
);

const BACKWARD = `
  let v = x[i];
  let o = y[i];
  let g = dy[i];
  var r = 0.0;
  switch OP {
    case 0u: { r = g * o; }
    case 1u: { r = divide(g, v); }
    case 2u: { r = divide(g, 2.0 * o); }
    case 3u: { r = (-0.5 * g) * (o * o * o); }
    case 4u: { r = g * sgn(v); }
    case 6u: { r = -g; }
    case 7u: { r = g * (2.0 * v); }
    case 8u: {
      if (P.p0 == 2.0) { r = g * (2.0 * v); } else if (P.p0 != 0.0) { r = g * (P.p0 * powOf(v, P.p1)); }
    }
    case 9u: { r = select(0.0, g, !isNan(v) && v >= P.p0 && v <= P.p1); }
    case 12u: { r = g * (1.0 - o * o); }
    default: {}
  }
  dx[i] = r;`;

/** dx = dy·op′ from x and y (sign, floor, round and pow with p = 0 give 0). */
export const unaryBackwardKernel = elementwiseKernel(
  "unary_backward", [["p0", "f32"], ["p1", "f32"]], [read("x"), read("y"), read("dy"), write("dx")], BACKWARD,
  { helpers: UNARY_HELPERS, overrides: [["OP", "u32"]] },
);
