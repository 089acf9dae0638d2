// Optimizer update kernels. sgd_update reproduces torch.optim.SGD exactly
// (weight decay, momentum with dampening, Nesterov, first-step buffer init),
// in f32, elementwise.

/** torch.optim.SGD step for n parameters (buf unused when momentum == 0). */
export function sgd_update(p: usize, g: usize, buf: usize, n: i32, lr: f32, momentum: f32, dampening: f32,
                           weightDecay: f32, nesterov: i32, firstStep: i32): void {
  const vlr = f32x4.splat(lr), vwd = f32x4.splat(weightDecay), vm = f32x4.splat(momentum);
  const damp = <f32>1 - dampening;
  const vdamp = f32x4.splat(damp);
  const useMom = momentum != 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    let d = v128.load(g + o);
    if (weightDecay != 0) d = f32x4.add(d, f32x4.mul(vwd, pv));
    if (useMom) {
      let b: v128;
      if (firstStep) b = d;
      else b = f32x4.add(f32x4.mul(vm, v128.load(buf + o)), f32x4.mul(vdamp, d));
      v128.store(buf + o, b);
      d = nesterov ? f32x4.add(d, f32x4.mul(vm, b)) : b;
    }
    v128.store(p + o, f32x4.sub(pv, f32x4.mul(vlr, d)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    let d = load<f32>(g + o);
    if (weightDecay != 0) d = d + weightDecay * pv;
    if (useMom) {
      const b: f32 = firstStep ? d : momentum * load<f32>(buf + o) + damp * d;
      store<f32>(buf + o, b);
      d = nesterov ? d + momentum * b : b;
    }
    store<f32>(p + o, pv - lr * d);
  }
}
