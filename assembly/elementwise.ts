// Elementwise kernels: ReLU/sigmoid forward and backward, 4-D strided broadcasting
// binary ops (add/sub/mul/div, maximum/minimum, the comparisons eq/ne/lt/le/gt/ge as 1/0
// masks) and their gradient reduction (reduce_broadcast), the broadcasting select
// (broadcast_where), fill/copy/axpy/scale and dropout. Contiguous loops use f32x4 with scalar
// tails, which give the same bits (IEEE operations, wasm's NaN-propagating min/max on both);
// every output element is computed in a fixed order.
import { mix32 } from "./random";
import { sumF64 } from "./sums";

/**
 * y = x <= 0 ? 0 : x: NaN stays NaN, as in PyTorch (a NaN compares false, so it is never
 * cleared; every other value gives the bits of max(x, 0) with +0 for x <= 0).
 */
export function relu_forward(x: usize, y: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, v128.andnot(v, f32x4.le(v, z)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    store<f32>(y + o, v <= 0 ? 0 : v);
  }
}

/** dx = y <= 0 ? 0 : dy: the gradient passes where y is NaN, as PyTorch's threshold_backward does. */
export function relu_backward(y: usize, dy: usize, dx: usize, n: i32): void {
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, v128.andnot(v128.load(dy + o), f32x4.le(v128.load(y + o), z)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(y + o) <= 0 ? 0 : load<f32>(dy + o));
  }
}

/** y = 1 / (1 + exp(-x)), stable for large |x| */
export function sigmoid_forward(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    let r: f32;
    if (v >= 0) {
      r = <f32>1 / (<f32>1 + Mathf.exp(-v));
    } else {
      const e = Mathf.exp(v);
      r = e / (<f32>1 + e);
    }
    store<f32>(y + o, r);
  }
}

/** dx = dy * y * (1 - y) */
export function sigmoid_backward(y: usize, dy: usize, dx: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(y + o);
    v128.store(dx + o, f32x4.mul(f32x4.mul(v128.load(dy + o), v), f32x4.sub(one, v)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(y + o);
    store<f32>(dx + o, load<f32>(dy + o) * v * (<f32>1 - v));
  }
}

// Binary op codes: the order of BINARY_OPS in src/backend/cpu/backend.ts.
// @ts-ignore: decorator
@inline
function opS(op: i32, a: f32, b: f32): f32 {
  if (op == 0) return a + b;
  if (op == 1) return a - b;
  if (op == 2) return a * b;
  if (op == 3) return a / b;
  if (op == 4) return Mathf.max(a, b);
  if (op == 5) return Mathf.min(a, b);
  if (op == 6) return a == b ? 1 : 0;
  if (op == 7) return a != b ? 1 : 0;
  if (op == 8) return a < b ? 1 : 0;
  if (op == 9) return a <= b ? 1 : 0;
  if (op == 10) return a > b ? 1 : 0;
  return a >= b ? 1 : 0;
}

// @ts-ignore: decorator
@inline
function opV(op: i32, a: v128, b: v128): v128 {
  if (op == 0) return f32x4.add(a, b);
  if (op == 1) return f32x4.sub(a, b);
  if (op == 2) return f32x4.mul(a, b);
  if (op == 3) return f32x4.div(a, b);
  if (op == 4) return f32x4.max(a, b);
  if (op == 5) return f32x4.min(a, b);
  const one = f32x4.splat(1);
  if (op == 6) return v128.and(f32x4.eq(a, b), one);
  if (op == 7) return v128.and(f32x4.ne(a, b), one);
  if (op == 8) return v128.and(f32x4.lt(a, b), one);
  if (op == 9) return v128.and(f32x4.le(a, b), one);
  if (op == 10) return v128.and(f32x4.gt(a, b), one);
  return v128.and(f32x4.ge(a, b), one);
}

// y[i] = a[i] op b[i] for contiguous arrays.
// @ts-ignore: decorator
@inline
function binFlat(op: i32, a: usize, b: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, opV(op, v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, opS(op, load<f32>(a + o), load<f32>(b + o)));
  }
}

// y[i] = a[i] op s (contiguous a)
// @ts-ignore: decorator
@inline
function binRowScalarB(op: i32, a: usize, s: f32, y: usize, n: i32): void {
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, opV(op, v128.load(a + o), vs));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, opS(op, load<f32>(a + o), s));
  }
}

// y[i] = s op b[i] (contiguous b)
// @ts-ignore: decorator
@inline
function binRowScalarA(op: i32, s: f32, b: usize, y: usize, n: i32): void {
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, opV(op, vs, v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, opS(op, s, load<f32>(b + o)));
  }
}

// Is a strided view with element strides s* the contiguous layout of [d0,d1,d2,d3]?
// (Strides of size-1 dimensions are irrelevant.)
// @ts-ignore: decorator
@inline
function isContig(d0: i32, d1: i32, d2: i32, d3: i32, s0: i32, s1: i32, s2: i32, s3: i32): bool {
  return (d3 == 1 || s3 == 1) && (d2 == 1 || s2 == d3) && (d1 == 1 || s1 == d2 * d3) && (d0 == 1 || s0 == d1 * d2 * d3);
}

// @ts-ignore: decorator
@inline
function broadcastOp(op: i32, a: usize, b: usize, y: usize, d0: i32, d1: i32, d2: i32, d3: i32,
                     as0: i32, as1: i32, as2: i32, as3: i32, bs0: i32, bs1: i32, bs2: i32, bs3: i32): void {
  const total = d0 * d1 * d2 * d3;
  if (total <= 0) return;
  const aC = isContig(d0, d1, d2, d3, as0, as1, as2, as3);
  const bC = isContig(d0, d1, d2, d3, bs0, bs1, bs2, bs3);
  if (aC && bC) {
    binFlat(op, a, b, y, total);
    return;
  }
  let yp = y;
  const rowBytes = <usize>d3 << 2;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const ao = a + (<usize>(i0 * as0 + i1 * as1 + i2 * as2) << 2);
        const bo = b + (<usize>(i0 * bs0 + i1 * bs1 + i2 * bs2) << 2);
        if (as3 == 1 && bs3 == 1) {
          binFlat(op, ao, bo, yp, d3);
        } else if (as3 == 1 && bs3 == 0) {
          binRowScalarB(op, ao, load<f32>(bo), yp, d3);
        } else if (as3 == 0 && bs3 == 1) {
          binRowScalarA(op, load<f32>(ao), bo, yp, d3);
        } else {
          for (let i3 = 0; i3 < d3; i3++) {
            store<f32>(yp + (<usize>i3 << 2),
              opS(op, load<f32>(ao + (<usize>(i3 * as3) << 2)), load<f32>(bo + (<usize>(i3 * bs3) << 2))));
          }
        }
        yp += rowBytes;
      }
    }
  }
}

/**
 * y[i0..i3] = a[strided] op b[strided]; op 0 add, 1 sub, 2 mul, 3 div, 4 maximum, 5 minimum,
 * 6 eq, 7 ne, 8 lt, 9 le, 10 gt, 11 ge. Strides in elements.
 */
export function broadcast_binary(op: i32, a: usize, b: usize, y: usize, d0: i32, d1: i32, d2: i32, d3: i32,
                                 as0: i32, as1: i32, as2: i32, as3: i32,
                                 bs0: i32, bs1: i32, bs2: i32, bs3: i32): void {
  switch (op) {
    case 0: broadcastOp(0, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 1: broadcastOp(1, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 2: broadcastOp(2, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 3: broadcastOp(3, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 4: broadcastOp(4, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 5: broadcastOp(5, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 6: broadcastOp(6, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 7: broadcastOp(7, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 8: broadcastOp(8, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 9: broadcastOp(9, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    case 10: broadcastOp(10, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3); break;
    default: broadcastOp(11, a, b, y, d0, d1, d2, d3, as0, as1, as2, as3, bs0, bs1, bs2, bs3);
  }
}

/**
 * y[i0..i3] = c[strided] ≠ 0 ? a[strided] : b[strided] (a NaN condition selects a). Rows whose
 * three operands are all contiguous run four lanes at a time.
 */
export function broadcast_where(c: usize, a: usize, b: usize, y: usize, d0: i32, d1: i32, d2: i32, d3: i32,
                                cs0: i32, cs1: i32, cs2: i32, cs3: i32, as0: i32, as1: i32, as2: i32, as3: i32,
                                bs0: i32, bs1: i32, bs2: i32, bs3: i32): void {
  const zero = f32x4.splat(0);
  const lanes = cs3 == 1 && as3 == 1 && bs3 == 1;
  let yp = y;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const co = c + (<usize>(i0 * cs0 + i1 * cs1 + i2 * cs2) << 2);
        const ao = a + (<usize>(i0 * as0 + i1 * as1 + i2 * as2) << 2);
        const bo = b + (<usize>(i0 * bs0 + i1 * bs1 + i2 * bs2) << 2);
        let i3 = 0;
        if (lanes) {
          for (; i3 + 4 <= d3; i3 += 4) {
            const o = <usize>i3 << 2;
            const pick = f32x4.ne(v128.load(co + o), zero);
            v128.store(yp + o, v128.bitselect(v128.load(ao + o), v128.load(bo + o), pick));
          }
        }
        for (; i3 < d3; i3++) {
          const cond = load<f32>(co + (<usize>(i3 * cs3) << 2));
          const src = cond != 0 ? ao + (<usize>(i3 * as3) << 2) : bo + (<usize>(i3 * bs3) << 2);
          store<f32>(yp + (<usize>i3 << 2), load<f32>(src));
        }
        yp += <usize>d3 << 2;
      }
    }
  }
}

/**
 * Gradient of a broadcast: y (ySize floats) = 0, then for every element of contiguous
 * x [d0,d1,d2,d3] in flat order, y[i0*ys0+i1*ys1+i2*ys2+i3*ys3] += x[...].
 * When ys3 == 0 each innermost row is first summed in f64 and then added to y.
 */
export function reduce_broadcast(x: usize, y: usize, ySize: i32, d0: i32, d1: i32, d2: i32, d3: i32,
                                 ys0: i32, ys1: i32, ys2: i32, ys3: i32): void {
  const total = d0 * d1 * d2 * d3;
  if (total == ySize && isContig(d0, d1, d2, d3, ys0, ys1, ys2, ys3)) {
    memory.copy(y, x, <usize>total << 2);
    return;
  }
  memory.fill(y, 0, <usize>ySize << 2);
  if (total <= 0) return;
  let xp = x;
  const rowBytes = <usize>d3 << 2;
  for (let i0 = 0; i0 < d0; i0++) {
    for (let i1 = 0; i1 < d1; i1++) {
      for (let i2 = 0; i2 < d2; i2++) {
        const yo = y + (<usize>(i0 * ys0 + i1 * ys1 + i2 * ys2) << 2);
        if (ys3 == 0) {
          store<f32>(yo, <f32>(<f64>load<f32>(yo) + sumF64(xp, d3)));
        } else if (ys3 == 1) {
          let i = 0;
          for (; i + 4 <= d3; i += 4) {
            const o = <usize>i << 2;
            v128.store(yo + o, f32x4.add(v128.load(yo + o), v128.load(xp + o)));
          }
          for (; i < d3; i++) {
            const o = <usize>i << 2;
            store<f32>(yo + o, load<f32>(yo + o) + load<f32>(xp + o));
          }
        } else {
          for (let i3 = 0; i3 < d3; i3++) {
            const p = yo + (<usize>(i3 * ys3) << 2);
            store<f32>(p, load<f32>(p) + load<f32>(xp + (<usize>i3 << 2)));
          }
        }
        xp += rowBytes;
      }
    }
  }
}

/** y[0..n) = v */
export function fill(y: usize, n: i32, v: f32): void {
  const vv = f32x4.splat(v);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), vv);
  for (; i < n; i++) store<f32>(y + (<usize>i << 2), v);
}

/** y[0..n) = x[0..n) (memmove semantics) */
export function copy(x: usize, y: usize, n: i32): void {
  if (n > 0) memory.copy(y, x, <usize>n << 2);
}

/** y += alpha * x */
export function axpy(n: i32, alpha: f32, x: usize, y: usize): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

/** y = alpha * x */
export function scale(x: usize, y: usize, n: i32, alpha: f32): void {
  const va = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.mul(va, v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, alpha * load<f32>(x + o));
  }
}

/** mask[i] = uniform(key, counter+i) >= p ? 1/(1-p) : 0; y = x * mask */
export function dropout_forward(x: usize, y: usize, mask: usize, n: i32, p: f32, key: u32, counter: u32): void {
  const k = mix32(key ^ 0x9E3779B9);
  const keep = <f32>1 / (<f32>1 - p);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const u = <f32>(mix32(k + counter + <u32>i) >>> 8) * <f32>5.9604644775390625e-8;
    const m: f32 = u >= p ? keep : 0;
    store<f32>(mask + o, m);
    store<f32>(y + o, load<f32>(x + o) * m);
  }
}
