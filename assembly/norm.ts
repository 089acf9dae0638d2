// Batch normalization over x [N, C, HW] with per-channel vectors of C floats:
// training forward (batch statistics, two-pass f64 mean/variance, running-stat update
// with PyTorch semantics), eval forward (running statistics), and the matching
// backward passes. Reductions over N·HW use f64 accumulators in a fixed order.
// Every kernel works on the channels [c0, c1) only (each channel is independent), so the
// threaded CPU backend splits a call by channel blocks; [0, C) is the whole tensor.
//
// The training kernels also run a ResNet's BatchNorm → (+ residual) → ReLU as one pass each
// way. Forward: the residual add and the ReLU are applied in the output pass, so only the
// final y is written. Backward: the ReLU mask (not y <= 0) is applied to dy as it is read, the
// masked gradient also goes to the residual, and dx may be dy's own buffer (each element is
// read before it is written). Each element sees exactly the operations of
// broadcast_binary (add) and relu_forward / relu_backward, so the results are bitwise those
// of the separate kernels. Optional buffers are pointer 0 (never a tensor: the heap starts
// at 64 KiB); each plane loop is specialised by a branch per plane.

import { sumF64 } from "./sums";

// Four values at byte offset o of p, or, when `masked`, of p with +0 where y <= 0 (the
// gradient through a ReLU with output y, NaN passing, bit for bit as relu_backward writes it).
// @ts-ignore: decorator
@inline
function loadV(p: usize, y: usize, o: usize, masked: bool): v128 {
  const v = v128.load(p + o);
  return masked ? v128.andnot(v, f32x4.le(v128.load(y + o), f32x4.splat(0))) : v;
}

// One value of loadV.
// @ts-ignore: decorator
@inline
function loadS(p: usize, y: usize, o: usize, masked: bool): f32 {
  const v = load<f32>(p + o);
  return masked ? (load<f32>(y + o) <= 0 ? 0 : v) : v;
}

// Σ (p[i] - mean)^2 in f64.
// @ts-ignore: decorator
@inline
function sumSqDevF64(p: usize, len: i32, mean: f64): f64 {
  const m = f64x2.splat(mean);
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(p + (<usize>i << 2));
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), m);
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)), m);
    a0 = f64x2.add(a0, f64x2.mul(d0, d0));
    a1 = f64x2.add(a1, f64x2.mul(d1, d1));
  }
  let s = (f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) + (f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1));
  for (; i < len; i++) {
    const d = <f64>load<f32>(p + (<usize>i << 2)) - mean;
    s += d * d;
  }
  return s;
}

// Σ g[i] (lane 0) and Σ g[i] * (x[i] - mean) (lane 1) in f64 over one plane, g = dy masked
// by y as loadV says; each sum in sumF64's lanes and order. g is also stored to `out` when
// `keep` (the residual's gradient, written here so the dx pass reads one stream, not two).
// @ts-ignore: decorator
@inline
function gradSumsF64(dy: usize, y: usize, x: usize, out: usize, len: i32, mean: f64, masked: bool, keep: bool): v128 {
  const m = f64x2.splat(mean);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const g = loadV(dy, y, o, masked);
    if (keep) v128.store(out + o, g);
    const g0 = f64x2.promote_low_f32x4(g);
    const g1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(g, g, 2, 3, 0, 1));
    s0 = f64x2.add(s0, g0);
    s1 = f64x2.add(s1, g1);
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), m);
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)), m);
    a0 = f64x2.add(a0, f64x2.mul(d0, g0));
    a1 = f64x2.add(a1, f64x2.mul(d1, g1));
  }
  let s = (f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s0, 1)) + (f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s1, 1));
  let d = (f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) + (f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1));
  for (; i < len; i++) {
    const o = <usize>i << 2;
    const gf = loadS(dy, y, o, masked);
    if (keep) store<f32>(out + o, gf);
    const g = <f64>gf;
    s += g;
    d += g * (<f64>load<f32>(x + o) - mean);
  }
  return f64x2.replace_lane(f64x2.splat(s), 1, d);
}

// y[i] = (x[i] - mean) * scale + shift over one plane; then, as flagged, r[i] + that (the
// residual, added in broadcast_binary's operand order) and the ReLU as relu_forward has it (NaN kept).
// @ts-ignore: decorator
@inline
function affinePlane(x: usize, r: usize, y: usize, len: i32, mean: f32, scale: f32, shift: f32,
                     residual: bool, relu: bool): void {
  const vm = f32x4.splat(mean), vs = f32x4.splat(scale), vb = f32x4.splat(shift), z = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    let v = f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + o), vm), vs), vb);
    if (residual) v = f32x4.add(v128.load(r + o), v);
    if (relu) v = v128.andnot(v, f32x4.le(v, z));
    v128.store(y + o, v);
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    let v = (load<f32>(x + o) - mean) * scale + shift;
    if (residual) v = load<f32>(r + o) + v;
    if (relu) v = v <= 0 ? 0 : v;
    store<f32>(y + o, v);
  }
}

// affinePlane with the epilogue chosen at run time: residual r (0: none; only with relu), relu.
// @ts-ignore: decorator
@inline
function outputPlane(x: usize, r: usize, y: usize, len: i32, mean: f32, scale: f32, shift: f32, relu: i32): void {
  if (r != 0) {
    affinePlane(x, r, y, len, mean, scale, shift, true, true);
  } else if (relu) {
    affinePlane(x, r, y, len, mean, scale, shift, false, true);
  } else {
    affinePlane(x, r, y, len, mean, scale, shift, false, false);
  }
}

/**
 * Training-mode batch norm forward; saves mean and invstd, optionally updates running stats.
 * With `relu` set, y = relu(residual + bn(x)), the residual (0: none) of x's shape.
 */
export function batchnorm_train_forward(x: usize, gamma: usize, beta: usize, residual: usize, y: usize,
                                        saveMean: usize, saveInvstd: usize,
                                        runningMean: usize, runningVar: usize,
                                        N: i32, C: i32, HW: i32, momentum: f32, eps: f32,
                                        updateRunning: i32, relu: i32, c0: i32, c1: i32): void {
  const cnt = <f64>N * <f64>HW;
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const off = <usize>(c * HW) << 2;
    const base = x + off;
    let s: f64 = 0;
    for (let n = 0; n < N; n++) s += sumF64(base + planeStride * <usize>n, HW);
    const mean = cnt > 0 ? s / cnt : 0;
    let q: f64 = 0;
    for (let n = 0; n < N; n++) q += sumSqDevF64(base + planeStride * <usize>n, HW, mean);
    const variance = cnt > 0 ? q / cnt : 0;
    const invstd = 1.0 / Math.sqrt(variance + <f64>eps);
    const co = <usize>c << 2;
    const meanf = <f32>mean, invf = <f32>invstd;
    store<f32>(saveMean + co, meanf);
    store<f32>(saveInvstd + co, invf);
    if (updateRunning) {
      const unbiased = cnt > 1 ? variance * cnt / (cnt - 1) : variance;
      store<f32>(runningMean + co, (<f32>1 - momentum) * load<f32>(runningMean + co) + momentum * meanf);
      store<f32>(runningVar + co, (<f32>1 - momentum) * load<f32>(runningVar + co) + momentum * <f32>unbiased);
    }
    const scale = invf * load<f32>(gamma + co);
    const shift = load<f32>(beta + co);
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      outputPlane(x + p, residual == 0 ? 0 : residual + p, y + p, HW, meanf, scale, shift, relu);
    }
  }
}

/**
 * Eval-mode batch norm forward with running statistics. With `relu` set, y = relu(residual +
 * bn(x)), the residual (0: none) of x's shape.
 */
export function batchnorm_eval_forward(x: usize, gamma: usize, beta: usize, residual: usize,
                                       runningMean: usize, runningVar: usize, y: usize,
                                       N: i32, C: i32, HW: i32, eps: f32, relu: i32, c0: i32, c1: i32): void {
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const co = <usize>c << 2;
    const invstd = <f32>(1.0 / Math.sqrt(<f64>load<f32>(runningVar + co) + <f64>eps));
    const scale = invstd * load<f32>(gamma + co);
    const mean = load<f32>(runningMean + co);
    const shift = load<f32>(beta + co);
    const off = <usize>(c * HW) << 2;
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      outputPlane(x + p, residual == 0 ? 0 : residual + p, y + p, HW, mean, scale, shift, relu);
    }
  }
}

// dx = a * (g - b - (x - mean) * k) over one plane, g = dy masked by y as loadV says.
// @ts-ignore: decorator
@inline
function bnBackPlane(dy: usize, y: usize, x: usize, dx: usize, len: i32,
                     mean: f32, a: f32, b: f32, k: f32, masked: bool): void {
  const vm = f32x4.splat(mean), va = f32x4.splat(a), vb = f32x4.splat(b), vk = f32x4.splat(k);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    const g = loadV(dy, y, o, masked);
    const t = f32x4.sub(f32x4.sub(g, vb), f32x4.mul(f32x4.sub(v128.load(x + o), vm), vk));
    v128.store(dx + o, f32x4.mul(va, t));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    const g = loadS(dy, y, o, masked);
    store<f32>(dx + o, a * ((g - b) - (load<f32>(x + o) - mean) * k));
  }
}

/**
 * Training-mode batch norm backward (gradient through the batch statistics). With y (the
 * output of a fused ReLU; 0: none) dy is masked by y <= 0 first (NaN passes); dres (0: none; only with y)
 * receives the gradient of the residual, dy as masked.
 */
export function batchnorm_backward(dy: usize, y: usize, x: usize, gamma: usize, saveMean: usize, saveInvstd: usize,
                                   dx: usize, dgamma: usize, dbeta: usize, dres: usize,
                                   N: i32, C: i32, HW: i32, c0: i32, c1: i32): void {
  const cnt = <f64>N * <f64>HW;
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const co = <usize>c << 2;
    const off = <usize>(c * HW) << 2;
    const mean = load<f32>(saveMean + co);
    const invstd = load<f32>(saveInvstd + co);
    let sdy: f64 = 0, sdot: f64 = 0;
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      let sums: v128;
      if (y == 0) sums = gradSumsF64(dy + p, 0, x + p, 0, HW, <f64>mean, false, false);
      else if (dres == 0) sums = gradSumsF64(dy + p, y + p, x + p, 0, HW, <f64>mean, true, false);
      else sums = gradSumsF64(dy + p, y + p, x + p, dres + p, HW, <f64>mean, true, true);
      sdy += f64x2.extract_lane(sums, 0);
      sdot += f64x2.extract_lane(sums, 1);
    }
    const dg = sdot * <f64>invstd;
    store<f32>(dbeta + co, <f32>sdy);
    store<f32>(dgamma + co, <f32>dg);
    if (cnt <= 0) continue;
    // dx = gamma*invstd * (dy - dbeta/n - (x-mean)*invstd*dgamma/n)
    const a = load<f32>(gamma + co) * invstd;
    const b = <f32>(sdy / cnt);
    const k = <f32>(dg * <f64>invstd / cnt);
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      // The masked gradient is in dres already, where there is one.
      if (dres != 0) bnBackPlane(dres + p, 0, x + p, dx + p, HW, mean, a, b, k, false);
      else if (y != 0) bnBackPlane(dy + p, y + p, x + p, dx + p, HW, mean, a, b, k, true);
      else bnBackPlane(dy + p, 0, x + p, dx + p, HW, mean, a, b, k, false);
    }
  }
}

// dx[i] = dy[i] * a over one plane.
// @ts-ignore: decorator
@inline
function scalePlane(dy: usize, dx: usize, len: i32, a: f32): void {
  const va = f32x4.splat(a);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), va));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(dy + o) * a);
  }
}

/** Eval-mode batch norm backward (running statistics are constants). */
export function batchnorm_eval_backward(dy: usize, x: usize, gamma: usize, runningMean: usize, runningVar: usize,
                                        dx: usize, dgamma: usize, dbeta: usize,
                                        N: i32, C: i32, HW: i32, eps: f32, c0: i32, c1: i32): void {
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const co = <usize>c << 2;
    const off = <usize>(c * HW) << 2;
    const mean = load<f32>(runningMean + co);
    const invstd = 1.0 / Math.sqrt(<f64>load<f32>(runningVar + co) + <f64>eps);
    let sdy: f64 = 0, sdot: f64 = 0;
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      const sums = gradSumsF64(dy + p, 0, x + p, 0, HW, <f64>mean, false, false);
      sdy += f64x2.extract_lane(sums, 0);
      sdot += f64x2.extract_lane(sums, 1);
    }
    store<f32>(dbeta + co, <f32>sdy);
    store<f32>(dgamma + co, <f32>(sdot * invstd));
    const a = load<f32>(gamma + co) * <f32>invstd;
    for (let n = 0; n < N; n++) {
      const p = off + planeStride * <usize>n;
      scalePlane(dy + p, dx + p, HW, a);
    }
  }
}
