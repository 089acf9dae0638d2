/**
 * WGSL for batch normalisation over x [N, C, HW] (semantics of assembly/norm.ts). Training
 * forward and both backward passes run one workgroup per channel: the threads stride over
 * the channel's N·HW values, reduce with wgSum (two passes for the variance, as on the
 * CPU), and then the same workgroup writes the normalised output or the input gradient.
 * Evaluation forward is elementwise, as is the epilogue of the fused BatchNorm → ReLU.
 */
import { elementwiseKernel, ENTRY_ARGS, type KernelSpec, NAN_WGSL, read, workgroupReductions, write } from "../kernel.ts";

/** Threads per channel workgroup. */
export const CHANNEL_WORKGROUP = 256;

const BN_PARAMS = [["batch", "u32"], ["C", "u32"], ["HW", "u32"]] as const;

/** Flat index of the e-th value of channel c (e runs over n, then the plane). */
const CHANNEL_INDEX = `
fn channelIndex(e: u32, c: u32) -> u32 { return ((e / P.HW) * P.C + c) * P.HW + e % P.HW; }`;

/** A per-channel kernel: `body` runs with c (the channel), count (N·HW) and lid; loop with `for (var e = lid; e < count; e += WG)`. */
function channelKernel(key: string, spec: Omit<KernelSpec, "key" | "code">, body: string): KernelSpec {
  return {
    key,
    ...spec,
    code: `${workgroupReductions(CHANNEL_WORKGROUP)}
${CHANNEL_INDEX}
@compute @workgroup_size(${CHANNEL_WORKGROUP})
fn main(${ENTRY_ARGS}) {
  let c = wid.x;
  let count = P.batch * P.HW;
  ${body.replaceAll("e += WG", `e = e + ${CHANNEL_WORKGROUP}u`)}
}`,
  };
}

/** Batch statistics (biased variance), running statistics with the unbiased variance, y. */
export const batchNormTrainForwardKernel = channelKernel("batchnorm_train_forward", {
  params: [...BN_PARAMS, ["momentum", "f32"], ["eps", "f32"], ["updateRunning", "u32"]],
  bindings: [read("x"), read("gamma"), read("beta"), write("y"), write("saveMean"), write("saveInvstd"),
    write("runningMean"), write("runningVar")],
}, `
  var s = 0.0;
  for (var e = lid; e < count; e += WG) { s = s + x[channelIndex(e, c)]; }
  let mean = wgSum(s, lid) / f32(count);
  var q = 0.0;
  for (var e = lid; e < count; e += WG) { let d = x[channelIndex(e, c)] - mean; q = q + d * d; }
  let variance = wgSum(q, lid) / f32(count);
  let invstd = 1.0 / sqrt(variance + P.eps);
  if (lid == 0u) {
    saveMean[c] = mean;
    saveInvstd[c] = invstd;
    if (P.updateRunning != 0u) {
      let unbiased = select(variance, variance * f32(count) / f32(count - 1u), count > 1u);
      runningMean[c] = (1.0 - P.momentum) * runningMean[c] + P.momentum * mean;
      runningVar[c] = (1.0 - P.momentum) * runningVar[c] + P.momentum * unbiased;
    }
  }
  let scale = invstd * gamma[c];
  let shift = beta[c];
  for (var e = lid; e < count; e += WG) { let i = channelIndex(e, c); y[i] = (x[i] - mean) * scale + shift; }`);

/** y = (x − running_mean)·(invstd·γ) + β with invstd = 1/√(running_var + eps). */
export const batchNormEvalForwardKernel = elementwiseKernel(
  "batchnorm_eval_forward", [...BN_PARAMS, ["eps", "f32"]],
  [read("x"), read("gamma"), read("beta"), read("runningMean"), read("runningVar"), write("y")], `
  let c = (i / P.HW) % P.C;
  let scale = (1.0 / sqrt(runningVar[c] + P.eps)) * gamma[c];
  y[i] = (x[i] - runningMean[c]) * scale + beta[c];`,
);

/**
 * The fused BatchNorm → (+ residual) → ReLU's epilogue, in place on the normalised y:
 * y = relu(residual + y) with RESIDUAL, else relu(y) (operand order and NaN kept as on the CPU).
 */
export const batchNormReluEpilogueKernel = elementwiseKernel(
  "batchnorm_relu_epilogue", [], [write("y"), read("residual")], `
  var v = y[i];
  if (RESIDUAL) { v = residual[i] + v; }
  y[i] = reluKeepNan(v);`,
  { helpers: NAN_WGSL, overrides: [["RESIDUAL", "bool"]] },
);

/**
 * dγ = Σ dy·(x − mean)·invstd, dβ = Σ dy, and dx. Training (EVAL = false): mean/invstd are
 * the saved batch statistics and dx goes through them; evaluation (EVAL = true): `stat`
 * holds running_var, invstd is derived, and dx = dy·γ·invstd.
 */
export const batchNormBackwardKernel = channelKernel("batchnorm_backward", {
  params: [...BN_PARAMS, ["eps", "f32"]],
  bindings: [read("dy"), read("x"), read("gamma"), read("mean"), read("stat"), write("dx"), write("dgamma"),
    write("dbeta")],
  overrides: [["EVAL", "bool"]],
}, `
  let m = mean[c];
  var invstd = stat[c];
  if (EVAL) { invstd = 1.0 / sqrt(stat[c] + P.eps); }
  var sdy = 0.0;
  var sdot = 0.0;
  for (var e = lid; e < count; e += WG) {
    let i = channelIndex(e, c);
    sdy = sdy + dy[i];
    sdot = sdot + dy[i] * (x[i] - m);
  }
  let totalDy = wgSum(sdy, lid);
  let dg = wgSum(sdot, lid) * invstd;
  if (lid == 0u) { dbeta[c] = totalDy; dgamma[c] = dg; }
  let a = gamma[c] * invstd;
  let b = totalDy / f32(count);
  let k = dg * invstd / f32(count);
  for (var e = lid; e < count; e += WG) {
    let i = channelIndex(e, c);
    if (EVAL) { dx[i] = dy[i] * a; } else { dx[i] = a * ((dy[i] - b) - (x[i] - m) * k); }
  }`);
