// The unary ops of the generic tier, forward and backward, each one entry point taking an op
// code (the position of the op in UNARY_OPS, src/backend/backend.ts) and two scalars (pow's
// exponent and exponent − 1, or clamp's bounds). Each op code runs its own loop: f32x4 where
// the op is plain IEEE arithmetic (the lanes and the scalar tail then give the same bits, so
// any split of the range gives the same result), scalar calls of AssemblyScript's Mathf
// (musl's expf, logf, powf, tanhf) for the transcendental ones. Semantics are PyTorch's:
// NaN propagates, sign(NaN) = 0, round is half to even, pow(x, p) takes PyTorch's fast paths
// for p ∈ {0, 1, ±0.5, 2, 3, −1, −2}, and the gradients are its derivative formulas.

// @ts-ignore: decorator
@inline const EXP = 0;
// @ts-ignore: decorator
@inline const LOG = 1;
// @ts-ignore: decorator
@inline const SQRT = 2;
// @ts-ignore: decorator
@inline const RSQRT = 3;
// @ts-ignore: decorator
@inline const ABS = 4;
// @ts-ignore: decorator
@inline const SIGN = 5;
// @ts-ignore: decorator
@inline const NEG = 6;
// @ts-ignore: decorator
@inline const SQUARE = 7;
// @ts-ignore: decorator
@inline const POW = 8;
// @ts-ignore: decorator
@inline const CLAMP = 9;
// @ts-ignore: decorator
@inline const FLOOR = 10;
// @ts-ignore: decorator
@inline const ROUND = 11;
// @ts-ignore: decorator
@inline const TANH = 12;
// pow's fast paths that are not ops of their own: x³, 1/x, 1/x², 1, x
// @ts-ignore: decorator
@inline const CUBE = 20;
// @ts-ignore: decorator
@inline const RECIPROCAL = 21;
// @ts-ignore: decorator
@inline const RECIPROCAL_SQUARE = 22;
// @ts-ignore: decorator
@inline const ONE = 23;
// @ts-ignore: decorator
@inline const IDENTITY = 24;

/** The loop that computes x^p: a fast path's own op, or POW (powf) for any other exponent. */
// @ts-ignore: decorator
@inline
function powPath(p: f32): i32 {
  if (p == 0) return ONE;
  if (p == 1) return IDENTITY;
  if (p == 0.5) return SQRT;
  if (p == 2) return SQUARE;
  if (p == 3) return CUBE;
  if (p == -0.5) return RSQRT;
  if (p == -1) return RECIPROCAL;
  if (p == -2) return RECIPROCAL_SQUARE;
  return POW;
}

/** Ops computed four lanes at a time. */
// @ts-ignore: decorator
@inline
function isLaneOp(op: i32): bool {
  return op != EXP && op != LOG && op != POW && op != TANH;
}

// @ts-ignore: decorator
@inline
function forwardS(op: i32, v: f32, p0: f32, p1: f32): f32 {
  if (op == EXP) return Mathf.exp(v);
  if (op == LOG) return Mathf.log(v);
  if (op == SQRT) return Mathf.sqrt(v);
  if (op == RSQRT) return <f32>1 / Mathf.sqrt(v);
  if (op == ABS) return Mathf.abs(v);
  if (op == SIGN) return v > 0 ? 1 : v < 0 ? -1 : 0;
  if (op == NEG) return -v;
  if (op == SQUARE) return v * v;
  if (op == POW) return Mathf.pow(v, p0);
  if (op == CLAMP) return Mathf.min(Mathf.max(v, p0), p1);
  if (op == FLOOR) return Mathf.floor(v);
  if (op == ROUND) return nearest<f32>(v);
  if (op == TANH) return Mathf.tanh(v);
  if (op == CUBE) return v * v * v;
  if (op == RECIPROCAL) return <f32>1 / v;
  if (op == RECIPROCAL_SQUARE) return <f32>1 / (v * v);
  if (op == ONE) return 1;
  return v;
}

// @ts-ignore: decorator
@inline
function forwardV(op: i32, v: v128, lo: v128, hi: v128): v128 {
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  if (op == SQRT) return f32x4.sqrt(v);
  if (op == RSQRT) return f32x4.div(one, f32x4.sqrt(v));
  if (op == ABS) return f32x4.abs(v);
  if (op == SIGN) return f32x4.sub(v128.and(f32x4.gt(v, zero), one), v128.and(f32x4.lt(v, zero), one));
  if (op == NEG) return f32x4.neg(v);
  if (op == SQUARE) return f32x4.mul(v, v);
  if (op == CLAMP) return f32x4.min(f32x4.max(v, lo), hi);
  if (op == FLOOR) return f32x4.floor(v);
  if (op == ROUND) return f32x4.nearest(v);
  if (op == CUBE) return f32x4.mul(f32x4.mul(v, v), v);
  if (op == RECIPROCAL) return f32x4.div(one, v);
  if (op == RECIPROCAL_SQUARE) return f32x4.div(one, f32x4.mul(v, v));
  if (op == ONE) return one;
  return v;
}

// @ts-ignore: decorator
@inline
function forwardLoop(op: i32, x: usize, y: usize, n: i32, p0: f32, p1: f32): void {
  let i = 0;
  if (isLaneOp(op)) {
    const lo = f32x4.splat(p0), hi = f32x4.splat(p1);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, forwardV(op, v128.load(x + o), lo, hi));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, forwardS(op, load<f32>(x + o), p0, p1));
  }
}

/** y[0..n) = op(x[0..n)); p0, p1: pow's exponent, or clamp's min and max. */
export function unary_forward(op: i32, x: usize, y: usize, n: i32, p0: f32, p1: f32): void {
  const path = op == POW ? powPath(p0) : op;
  switch (path) {
    case EXP: forwardLoop(EXP, x, y, n, p0, p1); break;
    case LOG: forwardLoop(LOG, x, y, n, p0, p1); break;
    case SQRT: forwardLoop(SQRT, x, y, n, p0, p1); break;
    case RSQRT: forwardLoop(RSQRT, x, y, n, p0, p1); break;
    case ABS: forwardLoop(ABS, x, y, n, p0, p1); break;
    case SIGN: forwardLoop(SIGN, x, y, n, p0, p1); break;
    case NEG: forwardLoop(NEG, x, y, n, p0, p1); break;
    case SQUARE: forwardLoop(SQUARE, x, y, n, p0, p1); break;
    case POW: forwardLoop(POW, x, y, n, p0, p1); break;
    case CLAMP: forwardLoop(CLAMP, x, y, n, p0, p1); break;
    case FLOOR: forwardLoop(FLOOR, x, y, n, p0, p1); break;
    case ROUND: forwardLoop(ROUND, x, y, n, p0, p1); break;
    case TANH: forwardLoop(TANH, x, y, n, p0, p1); break;
    case CUBE: forwardLoop(CUBE, x, y, n, p0, p1); break;
    case RECIPROCAL: forwardLoop(RECIPROCAL, x, y, n, p0, p1); break;
    case RECIPROCAL_SQUARE: forwardLoop(RECIPROCAL_SQUARE, x, y, n, p0, p1); break;
    case ONE: forwardLoop(ONE, x, y, n, p0, p1); break;
    default: forwardLoop(IDENTITY, x, y, n, p0, p1);
  }
}

/** x^p as unary_forward computes it (PyTorch's fast paths, else powf). */
// @ts-ignore: decorator
@inline
function powS(v: f32, p: f32): f32 {
  const path = powPath(p);
  if (path == POW) return Mathf.pow(v, p);
  if (path == SQRT) return Mathf.sqrt(v);
  if (path == SQUARE) return v * v;
  if (path == CUBE) return v * v * v;
  if (path == RSQRT) return <f32>1 / Mathf.sqrt(v);
  if (path == RECIPROCAL) return <f32>1 / v;
  if (path == RECIPROCAL_SQUARE) return <f32>1 / (v * v);
  if (path == ONE) return 1;
  return v;
}

/** sgn(v): −1, 0 or 1, and 0 for NaN (as torch.sgn on real numbers). */
// @ts-ignore: decorator
@inline
function sgnS(v: f32): f32 {
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

// dx from x (input), y (output) and dy; p0, p1 as in the forward.
// @ts-ignore: decorator
@inline
function backwardS(op: i32, x: f32, y: f32, dy: f32, p0: f32, p1: f32): f32 {
  if (op == EXP) return dy * y;
  if (op == LOG) return dy / x;
  if (op == SQRT) return dy / (<f32>2 * y);
  if (op == RSQRT) return (<f32>-0.5 * dy) * (y * y * y);
  if (op == ABS) return dy * sgnS(x);
  if (op == NEG) return -dy;
  if (op == SQUARE) return dy * (<f32>2 * x);
  if (op == POW) return dy * (p0 * powS(x, p1));
  if (op == CLAMP) return x >= p0 && x <= p1 ? dy : 0;
  if (op == TANH) return dy * (<f32>1 - y * y);
  return 0; // sign, floor, round: zero, whatever dy holds
}

// @ts-ignore: decorator
@inline
function backwardV(op: i32, x: v128, y: v128, dy: v128, lo: v128, hi: v128): v128 {
  const one = f32x4.splat(1);
  const two = f32x4.splat(2);
  const zero = f32x4.splat(0);
  if (op == EXP) return f32x4.mul(dy, y);
  if (op == LOG) return f32x4.div(dy, x);
  if (op == SQRT) return f32x4.div(dy, f32x4.mul(two, y));
  if (op == RSQRT) return f32x4.mul(f32x4.mul(f32x4.splat(-0.5), dy), f32x4.mul(f32x4.mul(y, y), y));
  if (op == ABS) {
    const sgn = f32x4.sub(v128.and(f32x4.gt(x, zero), one), v128.and(f32x4.lt(x, zero), one));
    return f32x4.mul(dy, sgn);
  }
  if (op == NEG) return f32x4.neg(dy);
  if (op == SQUARE) return f32x4.mul(dy, f32x4.mul(two, x));
  if (op == CLAMP) return v128.and(dy, v128.and(f32x4.ge(x, lo), f32x4.le(x, hi)));
  if (op == TANH) return f32x4.mul(dy, f32x4.sub(one, f32x4.mul(y, y)));
  return zero;
}

// @ts-ignore: decorator
@inline
function backwardLoop(op: i32, x: usize, y: usize, dy: usize, dx: usize, n: i32, p0: f32, p1: f32): void {
  let i = 0;
  if (op != POW) {
    const lo = f32x4.splat(p0), hi = f32x4.splat(p1);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(dx + o, backwardV(op, v128.load(x + o), v128.load(y + o), v128.load(dy + o), lo, hi));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, backwardS(op, load<f32>(x + o), load<f32>(y + o), load<f32>(dy + o), p0, p1));
  }
}

/** dx[0..n) = dy·op′ from x and y (the forward's input and output); p0, p1 as in the forward. */
export function unary_backward(op: i32, x: usize, y: usize, dy: usize, dx: usize, n: i32, p0: f32, p1: f32): void {
  // pow(x, 0) is constant (PyTorch's zeros); pow(x, 2) is square's rule, dy·(2·x).
  const path = op == POW ? (p0 == 0 ? SIGN : p0 == 2 ? SQUARE : POW) : op;
  switch (path) {
    case EXP: backwardLoop(EXP, x, y, dy, dx, n, p0, p1); break;
    case LOG: backwardLoop(LOG, x, y, dy, dx, n, p0, p1); break;
    case SQRT: backwardLoop(SQRT, x, y, dy, dx, n, p0, p1); break;
    case RSQRT: backwardLoop(RSQRT, x, y, dy, dx, n, p0, p1); break;
    case ABS: backwardLoop(ABS, x, y, dy, dx, n, p0, p1); break;
    case NEG: backwardLoop(NEG, x, y, dy, dx, n, p0, p1); break;
    case SQUARE: backwardLoop(SQUARE, x, y, dy, dx, n, p0, p1); break;
    case POW: backwardLoop(POW, x, y, dy, dx, n, p0, p1); break;
    case CLAMP: backwardLoop(CLAMP, x, y, dy, dx, n, p0, p1); break;
    case TANH: backwardLoop(TANH, x, y, dy, dx, n, p0, p1); break;
    default: backwardLoop(SIGN, x, y, dy, dx, n, p0, p1);
  }
}
