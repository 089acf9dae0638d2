// The one arithmetic primitive the hot loops share, and the probe that measures what it can do.
//
// madd(a, b, c) = a·b + c on four lanes. The plain build (SIMD128) rounds twice (multiply, then
// add); the relaxed build (compiled with --enable relaxed-simd, ASC_FEATURE_RELAXED_SIMD) emits
// f32x4.relaxed_madd, which the engine lowers to a fused multiply-add where the CPU has one and
// to multiply+add where it does not. That is why the relaxed build is fast but not bitwise
// reproducible across machines, and why the runtime uses it only when asked (see cpu.ts).

// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * The register-only ceiling of madd: `iters` rounds of 12 independent four-lane madds (enough
 * chains to cover the latency of a fused multiply-add on two pipes), nothing loaded or stored
 * inside the loop. FLOPs = iters · 12 · 4 · 2. Returns a lane of the result so the work is kept.
 */
export function simd_peak(iters: i32): f32 {
  const x = f32x4.splat(<f32>0.999999);
  const y = f32x4.splat(<f32>1e-7);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(1), a2 = f32x4.splat(2), a3 = f32x4.splat(3);
  let a4 = f32x4.splat(4), a5 = f32x4.splat(5), a6 = f32x4.splat(6), a7 = f32x4.splat(7);
  let a8 = f32x4.splat(8), a9 = f32x4.splat(9), a10 = f32x4.splat(10), a11 = f32x4.splat(11);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, x, y); a1 = madd(a1, x, y); a2 = madd(a2, x, y); a3 = madd(a3, x, y);
    a4 = madd(a4, x, y); a5 = madd(a5, x, y); a6 = madd(a6, x, y); a7 = madd(a7, x, y);
    a8 = madd(a8, x, y); a9 = madd(a9, x, y); a10 = madd(a10, x, y); a11 = madd(a11, x, y);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return f32x4.extract_lane(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))), 0);
}
