// The one float64 sum of a row of floats that every reduction over a contiguous run uses
// (batch-norm statistics, the gradient of a broadcast), so that equal sums are equal bits.
// Two f64x2 accumulators take alternate pairs of each group of four floats; the four lanes are
// combined in a fixed order, then the tail is added one value at a time.

// Σ p[0..len) in f64 (f64x2 lanes, fixed combination order).
// @ts-ignore: decorator
@inline
export function sumF64(p: usize, len: i32): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    a0 = f64x2.add(a0, f64x2.promote_low_f32x4(v));
    a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
  }
  let s = (f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) + (f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1));
  for (; i < len; i++) s += <f64>load<f32>(p + (<usize>i << 2));
  return s;
}

