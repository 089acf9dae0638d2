// Batch normalization over x [N, C, HW] with per-channel vectors of C floats:
// training forward (batch statistics, two-pass f64 mean/variance, running-stat update
// with PyTorch semantics), eval forward (running statistics), and the matching
// backward passes. Reductions over N·HW use f64 accumulators in a fixed order.
// Every kernel works on the channels [c0, c1) only (each channel is independent), so the
// threaded CPU backend splits a call by channel blocks; [0, C) is the whole tensor.

// Σ p[0..len) in f64 (f64x2 lanes, fixed combination order).
// @ts-ignore: decorator
@inline
function sumF64(p: usize, len: i32): f64 {
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

// Σ dy[i] * (x[i] - mean) in f64.
// @ts-ignore: decorator
@inline
function dotDevF64(dy: usize, x: usize, len: i32, mean: f64): f64 {
  const m = f64x2.splat(mean);
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const g = v128.load(dy + o);
    const d0 = f64x2.sub(f64x2.promote_low_f32x4(v), m);
    const d1 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)), m);
    a0 = f64x2.add(a0, f64x2.mul(d0, f64x2.promote_low_f32x4(g)));
    a1 = f64x2.add(a1, f64x2.mul(d1, f64x2.promote_low_f32x4(v128.shuffle<f32>(g, g, 2, 3, 0, 1))));
  }
  let s = (f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) + (f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1));
  for (; i < len; i++) {
    const o = <usize>i << 2;
    s += <f64>load<f32>(dy + o) * (<f64>load<f32>(x + o) - mean);
  }
  return s;
}

// y[i] = (x[i] - mean) * scale + shift over one plane.
// @ts-ignore: decorator
@inline
function affinePlane(x: usize, y: usize, len: i32, mean: f32, scale: f32, shift: f32): void {
  const vm = f32x4.splat(mean), vs = f32x4.splat(scale), vb = f32x4.splat(shift);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(f32x4.mul(f32x4.sub(v128.load(x + o), vm), vs), vb));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, (load<f32>(x + o) - mean) * scale + shift);
  }
}

/** Training-mode batch norm forward; saves mean and invstd, optionally updates running stats. */
export function batchnorm_train_forward(x: usize, gamma: usize, beta: usize, y: usize,
                                        saveMean: usize, saveInvstd: usize,
                                        runningMean: usize, runningVar: usize,
                                        N: i32, C: i32, HW: i32, momentum: f32, eps: f32,
                                        updateRunning: i32, c0: i32, c1: i32): void {
  const cnt = <f64>N * <f64>HW;
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const base = x + (<usize>(c * HW) << 2);
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
    const ybase = y + (<usize>(c * HW) << 2);
    for (let n = 0; n < N; n++) {
      affinePlane(base + planeStride * <usize>n, ybase + planeStride * <usize>n, HW, meanf, scale, shift);
    }
  }
}

/** Eval-mode batch norm forward with running statistics. */
export function batchnorm_eval_forward(x: usize, gamma: usize, beta: usize,
                                       runningMean: usize, runningVar: usize, y: usize,
                                       N: i32, C: i32, HW: i32, eps: f32, c0: i32, c1: i32): void {
  const planeStride = <usize>C * <usize>HW << 2;
  for (let c = c0; c < c1; c++) {
    const co = <usize>c << 2;
    const invstd = <f32>(1.0 / Math.sqrt(<f64>load<f32>(runningVar + co) + <f64>eps));
    const scale = invstd * load<f32>(gamma + co);
    const mean = load<f32>(runningMean + co);
    const shift = load<f32>(beta + co);
    const off = <usize>(c * HW) << 2;
    for (let n = 0; n < N; n++) {
      affinePlane(x + off + planeStride * <usize>n, y + off + planeStride * <usize>n, HW, mean, scale, shift);
    }
  }
}

// dx = a * (dy - b - (x - mean) * k) over one plane.
// @ts-ignore: decorator
@inline
function bnBackPlane(dy: usize, x: usize, dx: usize, len: i32, mean: f32, a: f32, b: f32, k: f32): void {
  const vm = f32x4.splat(mean), va = f32x4.splat(a), vb = f32x4.splat(b), vk = f32x4.splat(k);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const o = <usize>i << 2;
    const t = f32x4.sub(f32x4.sub(v128.load(dy + o), vb), f32x4.mul(f32x4.sub(v128.load(x + o), vm), vk));
    v128.store(dx + o, f32x4.mul(va, t));
  }
  for (; i < len; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, a * ((load<f32>(dy + o) - b) - (load<f32>(x + o) - mean) * k));
  }
}

/** Training-mode batch norm backward (gradient through the batch statistics). */
export function batchnorm_backward(dy: usize, x: usize, gamma: usize, saveMean: usize, saveInvstd: usize,
                                   dx: usize, dgamma: usize, dbeta: usize,
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
      sdy += sumF64(dy + p, HW);
      sdot += dotDevF64(dy + p, x + p, HW, <f64>mean);
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
      bnBackPlane(dy + p, x + p, dx + p, HW, mean, a, b, k);
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
      sdy += sumF64(dy + p, HW);
      sdot += dotDevF64(dy + p, x + p, HW, <f64>mean);
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
