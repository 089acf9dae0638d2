// Counter-based random numbers shared bit-for-bit with the TypeScript side.
// mix() is a 32-bit integer hash; bits(key, i) = mix(mix(key ^ 0x9E3779B9) + i);
// uniform(key, i) takes the top 24 bits as a float in [0, 1). random_uniform,
// random_normal (Box–Muller in f64 using AssemblyScript's own Math, so results are
// identical on every host) and random_bernoulli fill arrays from element counter onward.

// @ts-ignore: decorator
@inline
export function mix32(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  x ^= x >>> 16;
  return x;
}

// @ts-ignore: decorator
@inline
export function rng_bits(key: u32, i: u32): u32 {
  return mix32(mix32(key ^ 0x9E3779B9) + i);
}

// @ts-ignore: decorator
@inline
export function rng_uniform(key: u32, i: u32): f32 {
  return <f32>(rng_bits(key, i) >>> 8) * <f32>5.9604644775390625e-8; // 2^-24
}

/** y[i] = f32(lo + (hi - lo) * uniform(key, counter + i)), evaluated in f64 */
export function random_uniform(y: usize, n: i32, lo: f32, hi: f32, key: u32, counter: u32): void {
  const k = mix32(key ^ 0x9E3779B9);
  // computed in f64 and rounded once, like `lo + (hi - lo) * u` on JS numbers
  const l = <f64>lo, span = <f64>hi - <f64>lo;
  for (let i = 0; i < n; i++) {
    const u = <f64>(mix32(k + counter + <u32>i) >>> 8) * 5.9604644775390625e-8;
    store<f32>(y + (<usize>i << 2), <f32>(l + span * u));
  }
}

/** Box–Muller normal samples; pair j uses counters counter+2j (u1) and counter+2j+1 (u2). */
export function random_normal(y: usize, n: i32, mean: f32, std: f32, key: u32, counter: u32): void {
  const k = mix32(key ^ 0x9E3779B9);
  const m = <f64>mean, s = <f64>std;
  const TWO_PI: f64 = 6.283185307179586;
  for (let i = 0; i < n; i += 2) {
    const c = counter + <u32>i;
    const u1 = 1.0 - <f64>(<f32>(mix32(k + c) >>> 8) * <f32>5.9604644775390625e-8);
    const u2 = <f64>(<f32>(mix32(k + c + 1) >>> 8) * <f32>5.9604644775390625e-8);
    const r = Math.sqrt(-2.0 * Math.log(u1));
    const t = TWO_PI * u2;
    store<f32>(y + (<usize>i << 2), <f32>(m + s * r * Math.cos(t)));
    if (i + 1 < n) store<f32>(y + (<usize>(i + 1) << 2), <f32>(m + s * r * Math.sin(t)));
  }
}

/** y[i] = uniform(key, counter + i) < p ? 1 : 0 (both float32: the WGSL kernel compares the same numbers) */
export function random_bernoulli(y: usize, n: i32, p: f32, key: u32, counter: u32): void {
  const k = mix32(key ^ 0x9E3779B9);
  for (let i = 0; i < n; i++) {
    const u = <f32>(mix32(k + counter + <u32>i) >>> 8) * <f32>5.9604644775390625e-8;
    store<f32>(y + (<usize>i << 2), u < p ? <f32>1 : <f32>0);
  }
}
