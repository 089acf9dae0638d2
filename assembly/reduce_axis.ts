// Reductions over one axis of x read as [outer, size, inner] (row-major), into y [outer, inner],
// and the backward of the selecting ones. Every output has one fixed summation order whatever
// part of the outputs a call covers: a contiguous run (inner 1) is summed by sums.ts's f64 row
// sum; strided runs are summed in f64 down the axis, four outputs side by side (the lanes and
// the scalar tail add the same values in the same order). max/min keep the first NaN, else the
// first extreme value, and its index along the axis (as a float), as torch.max(x, dim) does.
//
// A call may cover a block of the inner outputs only: `inner` is then the block's width and
// `stride` the full inner extent (the row stride of x's axis and of y); otherwise stride = inner.
import { sumF64 } from "./sums";

// @ts-ignore: decorator
@inline const SUM = 0;
// @ts-ignore: decorator
@inline const MAX = 1;
// @ts-ignore: decorator
@inline const MIN = 2;

/** Does v replace the kept value `best` (max: greater, min: smaller; a first NaN always)? */
// @ts-ignore: decorator
@inline
function replacesS(op: i32, v: f32, best: f32): bool {
  return (op == MAX ? v > best : v < best) || (v != v && best == best);
}

// @ts-ignore: decorator
@inline
function replacesV(op: i32, v: v128, best: v128): v128 {
  const better = op == MAX ? f32x4.gt(v, best) : f32x4.lt(v, best);
  return v128.or(better, v128.and(f32x4.ne(v, v), f32x4.eq(best, best)));
}

/** max (op MAX) or min (MIN) over s of x[s·stride], four neighbouring outputs side by side. */
// @ts-ignore: decorator
@inline
function selectColumns(op: i32, x: usize, y: usize, indices: usize, size: i32, stride: i32): void {
  const step = <usize>stride << 2;
  let best = v128.load(x);
  let at = i32x4.splat(0);
  let p = x + step;
  for (let s = 1; s < size; s++) {
    const v = v128.load(p);
    const take = replacesV(op, v, best);
    best = v128.bitselect(v, best, take);
    at = v128.bitselect(i32x4.splat(s), at, take);
    p += step;
  }
  v128.store(y, best);
  if (indices) v128.store(indices, f32x4.convert_i32x4_s(at));
}

// @ts-ignore: decorator
@inline
function selectOne(op: i32, x: usize, y: usize, indices: usize, size: i32, stride: i32): void {
  const step = <usize>stride << 2;
  let best = load<f32>(x);
  let at = 0;
  let p = x + step;
  for (let s = 1; s < size; s++) {
    const v = load<f32>(p);
    if (replacesS(op, v, best)) {
      best = v;
      at = s;
    }
    p += step;
  }
  store<f32>(y, best);
  if (indices) store<f32>(indices, <f32>at);
}

/** Σ over s of four neighbouring outputs' columns, f64, in order of s. */
// @ts-ignore: decorator
@inline
function sumColumns(x: usize, y: usize, size: i32, stride: i32, divisor: f64): void {
  const step = <usize>stride << 2;
  let lo = f64x2.splat(0), hi = f64x2.splat(0);
  let p = x;
  for (let s = 0; s < size; s++) {
    const v = v128.load(p);
    lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
    hi = f64x2.add(hi, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
    p += step;
  }
  const d = f64x2.splat(divisor);
  lo = f64x2.div(lo, d);
  hi = f64x2.div(hi, d);
  store<f32>(y, <f32>f64x2.extract_lane(lo, 0));
  store<f32>(y, <f32>f64x2.extract_lane(lo, 1), 4);
  store<f32>(y, <f32>f64x2.extract_lane(hi, 0), 8);
  store<f32>(y, <f32>f64x2.extract_lane(hi, 1), 12);
}

// @ts-ignore: decorator
@inline
function sumOne(x: usize, y: usize, size: i32, stride: i32, divisor: f64): void {
  const step = <usize>stride << 2;
  let acc: f64 = 0;
  let p = x;
  for (let s = 0; s < size; s++) {
    acc += <f64>load<f32>(p);
    p += step;
  }
  store<f32>(y, <f32>(acc / divisor));
}

// @ts-ignore: decorator
@inline
function reduceLoop(op: i32, x: usize, y: usize, indices: usize, outer: i32, size: i32, inner: i32, stride: i32,
                    divisor: f64): void {
  for (let o = 0; o < outer; o++) {
    const xo = x + (<usize>o * <usize>size * <usize>stride << 2);
    const yo = y + (<usize>o * <usize>stride << 2);
    const io = indices ? indices + (<usize>o * <usize>stride << 2) : 0;
    if (stride == 1) {
      if (op == SUM) store<f32>(yo, <f32>(sumF64(xo, size) / divisor));
      else selectOne(op, xo, yo, io, size, 1);
      continue;
    }
    let i = 0;
    for (; i + 4 <= inner; i += 4) {
      const at = <usize>i << 2;
      if (op == SUM) sumColumns(xo + at, yo + at, size, stride, divisor);
      else selectColumns(op, xo + at, yo + at, io ? io + at : 0, size, stride);
    }
    for (; i < inner; i++) {
      const at = <usize>i << 2;
      if (op == SUM) sumOne(xo + at, yo + at, size, stride, divisor);
      else selectOne(op, xo + at, yo + at, io ? io + at : 0, size, stride);
    }
  }
}

/**
 * y[o, i] = reduction over s of x[o, s, i]: op 0 sum (Σ / divisor), 1 max, 2 min (indices, if
 * not 0, receive the position along the axis). size ≥ 1 for max and min.
 */
export function reduce_axis(op: i32, x: usize, y: usize, indices: usize, outer: i32, size: i32, inner: i32,
                            stride: i32, divisor: f64): void {
  if (op == SUM) reduceLoop(SUM, x, y, 0, outer, size, inner, stride, divisor);
  else if (op == MAX) reduceLoop(MAX, x, y, indices, outer, size, inner, stride, divisor);
  else reduceLoop(MIN, x, y, indices, outer, size, inner, stride, divisor);
}

/**
 * The gradient of a max/min with indices: dx[o, s, i] = dy[o, i] where s = indices[o, i],
 * else 0 (dx read as [outer, size, inner] like reduce_axis's x).
 */
export function scatter_axis(dy: usize, indices: usize, dx: usize, outer: i32, size: i32, inner: i32, stride: i32): void {
  const width = <usize>inner << 2;
  const step = <usize>stride << 2;
  for (let o = 0; o < outer; o++) {
    const dxo = dx + (<usize>o * <usize>size * <usize>stride << 2);
    const row = <usize>o * <usize>stride << 2;
    for (let s = 0; s < size; s++) memory.fill(dxo + <usize>s * step, 0, width);
    for (let i = 0; i < inner; i++) {
      const at = <usize>i << 2;
      const s = <i32>load<f32>(indices + row + at);
      store<f32>(dxo + <usize>s * step + at, load<f32>(dy + row + at));
    }
  }
}
