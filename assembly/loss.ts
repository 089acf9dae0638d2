// Softmax cross-entropy with label smoothing over logits [N, C] and i32 labels [N]:
// per-sample losses (stable log-sum-exp in f64) and the logits gradient
// (softmax(alpha·z) − q)·scale, where alpha < 1 gives the PowerGrad transform.
// q = (1−ε)·onehot(label) + ε/C. A label outside [0, C) contributes no one-hot term.

/** losses[n] = −Σ_c q_c · log_softmax(z_n)_c */
export function softmax_xent_forward(logits: usize, labels: usize, losses: usize, N: i32, C: i32, smoothing: f32): void {
  const eps = <f64>smoothing;
  const uni = C > 0 ? eps / <f64>C : 0;
  for (let n = 0; n < N; n++) {
    const z = logits + (<usize>n * <usize>C << 2);
    let m: f64 = -Infinity;
    for (let c = 0; c < C; c++) m = max(m, <f64>load<f32>(z + (<usize>c << 2)));
    let s: f64 = 0;
    for (let c = 0; c < C; c++) s += Math.exp(<f64>load<f32>(z + (<usize>c << 2)) - m);
    const lse = m + Math.log(s);
    // −Σ q_c (z_c − lse) = −(1−ε)(z_y − lse) − ε/C · Σ (z_c − lse)
    let loss: f64 = 0;
    if (uni != 0) {
      let t: f64 = 0;
      for (let c = 0; c < C; c++) t += <f64>load<f32>(z + (<usize>c << 2)) - lse;
      loss = -uni * t;
    }
    const label = load<i32>(labels + (<usize>n << 2));
    if (label >= 0 && label < C) loss -= (1.0 - eps) * (<f64>load<f32>(z + (<usize>label << 2)) - lse);
    store<f32>(losses + (<usize>n << 2), <f32>loss);
  }
}

/** dlogits[n,c] = (softmax(alpha·z_n)_c − q_c) · scale */
export function softmax_xent_backward(logits: usize, labels: usize, dlogits: usize, N: i32, C: i32,
                                      smoothing: f32, alpha: f32, scale: f32): void {
  const eps = <f64>smoothing;
  const uni = C > 0 ? eps / <f64>C : 0;
  const a = <f64>alpha, sc = <f64>scale;
  for (let n = 0; n < N; n++) {
    const z = logits + (<usize>n * <usize>C << 2);
    const dz = dlogits + (<usize>n * <usize>C << 2);
    let m: f64 = -Infinity;
    for (let c = 0; c < C; c++) m = max(m, a * <f64>load<f32>(z + (<usize>c << 2)));
    let s: f64 = 0;
    for (let c = 0; c < C; c++) s += Math.exp(a * <f64>load<f32>(z + (<usize>c << 2)) - m);
    const inv = 1.0 / s;
    const label = load<i32>(labels + (<usize>n << 2));
    for (let c = 0; c < C; c++) {
      const p = Math.exp(a * <f64>load<f32>(z + (<usize>c << 2)) - m) * inv;
      const q = (c == label ? 1.0 - eps : 0.0) + uni;
      store<f32>(dz + (<usize>c << 2), <f32>((p - q) * sc));
    }
  }
}
