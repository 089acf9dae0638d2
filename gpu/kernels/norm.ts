/**
 * WGSL for batch normalisation over x [N, C, HW] (semantics of assembly/norm.ts). The
 * per-channel reductions of training run in three dispatches, so that a channel's N·HW values
 * are spread over many workgroups instead of one (ResNet-20 has 16 to 64 channels: one
 * workgroup each left most of a large GPU idle):
 * 1. partial: a grid of (blocks × channels) workgroups, each reducing one block of a
 *    channel's values (forward: its sum and its squared deviations from the block's own
 *    mean; backward: Σdy and Σdy·(x − mean));
 * 2. finalize: one workgroup per channel combines its blocks' partials in block order with a
 *    fixed tree (forward: Chan et al.'s pairwise update, "Updating formulae and a pairwise
 *    algorithm for computing sample variances", 1979: M2 = Σ M2_b + Σ n_b·(mean_b − mean)²,
 *    the two-pass variance of the CPU up to rounding) and writes the channel's statistics
 *    (mean, invstd, running statistics; or dγ, dβ);
 * 3. an elementwise pass: the normalised output with the fused (+ residual) → ReLU epilogue
 *    of BatchNorm → ReLU, or the input gradient.
 * Every sum runs in a fixed order, so results are the same bits on every run.
 * Evaluation forward is elementwise.
 */
import { elementwiseKernel, ENTRY_ARGS, type KernelSpec, NAN_WGSL, read, workgroupReductions, write } from "../kernel.ts";

/** Threads per workgroup of the partial and finalize kernels (and the most blocks one channel is cut into). */
export const CHANNEL_WORKGROUP = 256;
/** The fewest values a block holds: 4 per thread, so a block's reduction is not all overhead. */
const MIN_BLOCK = 4 * CHANNEL_WORKGROUP;

/** How a channel's `count` values are cut: `blocks` blocks (1 to CHANNEL_WORKGROUP) of `blockLen` values, the last shorter. */
export function channelBlocks(count: number): { blocks: number; blockLen: number } {
  const blockLen = Math.max(MIN_BLOCK, Math.ceil(count / CHANNEL_WORKGROUP));
  return { blocks: Math.max(1, Math.ceil(count / blockLen)), blockLen };
}

const BN_PARAMS = [["batch", "u32"]] as const;
const BLOCK_PARAMS = [...BN_PARAMS, ["blocks", "u32"], ["blockLen", "u32"]] as const;

/**
 * The channels C and the plane HW are pipeline constants, the batch a uniform: an element's
 * channel (i / HW) % C and a channel's e-th element then divide by literals (a multiply-high
 * and shift), not by run-time values (~20 instructions on a GPU, which has no integer divider;
 * one scalar div per lane on a CPU adapter), in passes that do little else per element. One
 * pipeline per layer shape, whatever the batch.
 */
const BN_OVERRIDES = [["C", "u32"], ["HW", "u32"]] as const;

/** Flat index of the e-th value of channel c (e runs over n, then the plane). */
const CHANNEL_INDEX = `
fn channelIndex(e: u32, c: u32) -> u32 { return ((e / HW) * C + c) * HW + e % HW; }`;

/** A kernel of CHANNEL_WORKGROUP threads with wgSum: `helpers`, then `main` with `body` (count = N·HW is defined). */
function channelWorkgroupKernel(key: string, spec: Omit<KernelSpec, "key" | "code">, helpers: string, body: string): KernelSpec {
  return {
    key,
    ...spec,
    code: `${workgroupReductions(CHANNEL_WORKGROUP)}
${helpers}
@compute @workgroup_size(${CHANNEL_WORKGROUP})
fn main(${ENTRY_ARGS}) {
  let count = P.batch * HW;
  ${body}
}`,
  };
}

/**
 * A kernel over (block, channel) = (wid.x, wid.y): `body` runs with c, b, count, the block's
 * [start, end) and lid, and loops `for (var e = start + lid; e < end; e += WG)`.
 * partial[slot] and partial[slot + 1] take the block's two results.
 */
function blockKernel(key: string, spec: Omit<KernelSpec, "key" | "code">, body: string): KernelSpec {
  return channelWorkgroupKernel(key, spec, CHANNEL_INDEX, `
  let b = wid.x;
  let c = wid.y;
  let start = b * P.blockLen;
  let end = min(start + P.blockLen, count);
  let slot = 2u * (c * P.blocks + b);
  ${body.replaceAll("e += WG", `e = e + ${CHANNEL_WORKGROUP}u`)}`);
}

/**
 * A kernel with one workgroup per channel c = wid.x that combines the channel's partials:
 * thread lid < blocks holds block lid's pair as (first, second) and its length nb (else 0s).
 */
function finalizeKernel(key: string, spec: Omit<KernelSpec, "key" | "code">, body: string, helpers = ""): KernelSpec {
  return channelWorkgroupKernel(key, spec, helpers, `
  let c = wid.x;
  var first = 0.0;
  var second = 0.0;
  var nb = 0.0;
  if (lid < P.blocks) {
    first = partial[2u * (c * P.blocks + lid)];
    second = partial[2u * (c * P.blocks + lid) + 1u];
    nb = f32(min(P.blockLen, count - lid * P.blockLen));
  }
  ${body}`);
}

/** Per block: the sum and the sum of squared deviations from the block's mean. */
export const batchNormStatsPartialKernel = blockKernel("batchnorm_stats_partial", {
  params: BLOCK_PARAMS,
  bindings: [read("x"), write("partial")],
  overrides: BN_OVERRIDES,
}, `
  var s = 0.0;
  for (var e = start + lid; e < end; e += WG) { s = s + x[channelIndex(e, c)]; }
  let sum = wgSum(s, lid);
  let blockMean = sum / f32(end - start);
  var q = 0.0;
  for (var e = start + lid; e < end; e += WG) { let d = x[channelIndex(e, c)] - blockMean; q = q + d * d; }
  let m2 = wgSum(q, lid);
  if (lid == 0u) { partial[slot] = sum; partial[slot + 1u] = m2; }`);

/** Batch statistics (biased variance) of each channel from its blocks; running statistics with the unbiased variance. */
export const batchNormStatsFinalizeKernel = finalizeKernel("batchnorm_stats_finalize", {
  params: [...BLOCK_PARAMS, ["momentum", "f32"], ["eps", "f32"], ["updateRunning", "u32"]],
  bindings: [read("partial"), write("saveMean"), write("saveInvstd"), write("runningMean"), write("runningVar")],
  overrides: BN_OVERRIDES,
}, `
  let mean = wgSum(first, lid) / f32(count);
  var q = 0.0;
  if (lid < P.blocks) { let d = first / nb - mean; q = second + nb * d * d; }
  let variance = wgSum(q, lid) / f32(count);
  if (lid == 0u) {
    saveMean[c] = mean;
    saveInvstd[c] = 1.0 / sqrt(variance + P.eps);
    if (P.updateRunning != 0u) {
      let unbiased = select(variance, variance * f32(count) / f32(count - 1u), count > 1u);
      runningMean[c] = (1.0 - P.momentum) * runningMean[c] + P.momentum * mean;
      runningVar[c] = (1.0 - P.momentum) * runningVar[c] + P.momentum * unbiased;
    }
  }`);

/**
 * The epilogue of both normalising passes, `v` the normalised value: with RELU, relu(residual + v)
 * with RESIDUAL, else relu(v) (operand order and NaN kept as on the CPU); without RELU, v.
 */
const EPILOGUE = `
  if (RELU) {
    if (RESIDUAL) { v = residual[i] + v; }
    v = reluKeepNan(v);
  }
  y[i] = v;`;
const EPILOGUE_OVERRIDES = [...BN_OVERRIDES, ["RELU", "bool"], ["RESIDUAL", "bool"]] as const;

/** y = (x − mean)·(invstd·γ) + β from the saved batch statistics, then the epilogue. */
export const batchNormNormalizeKernel = elementwiseKernel(
  "batchnorm_normalize", BN_PARAMS,
  [read("x"), read("gamma"), read("beta"), read("mean"), read("invstd"), read("residual"), write("y")], `
  let c = (i / HW) % C;
  var v = (x[i] - mean[c]) * (invstd[c] * gamma[c]) + beta[c];${EPILOGUE}`,
  { helpers: NAN_WGSL, overrides: EPILOGUE_OVERRIDES },
);

/** y = (x − running_mean)·(invstd·γ) + β with invstd = 1/√(running_var + eps), then the epilogue. */
export const batchNormEvalForwardKernel = elementwiseKernel(
  "batchnorm_eval_forward", [...BN_PARAMS, ["eps", "f32"]],
  [read("x"), read("gamma"), read("beta"), read("runningMean"), read("runningVar"), read("residual"), write("y")], `
  let c = (i / HW) % C;
  let scale = (1.0 / sqrt(runningVar[c] + P.eps)) * gamma[c];
  var v = (x[i] - runningMean[c]) * scale + beta[c];${EPILOGUE}`,
  { helpers: NAN_WGSL, overrides: EPILOGUE_OVERRIDES },
);

/** Per block: Σdy and Σdy·(x − mean) over the block. */
export const batchNormBackwardPartialKernel = blockKernel("batchnorm_backward_partial", {
  params: BLOCK_PARAMS,
  bindings: [read("dy"), read("x"), read("mean"), write("partial")],
  overrides: BN_OVERRIDES,
}, `
  let m = mean[c];
  var sdy = 0.0;
  var sdot = 0.0;
  for (var e = start + lid; e < end; e += WG) {
    let i = channelIndex(e, c);
    sdy = sdy + dy[i];
    sdot = sdot + dy[i] * (x[i] - m);
  }
  let totalDy = wgSum(sdy, lid);
  let dot = wgSum(sdot, lid);
  if (lid == 0u) { partial[slot] = totalDy; partial[slot + 1u] = dot; }`);

/** The invstd of channel c: the saved one (training), or 1/√(running_var + eps) (EVAL: `stat` holds running_var). */
const INVSTD = `
fn channelInvstd(c: u32) -> f32 {
  if (EVAL) { return 1.0 / sqrt(stat[c] + P.eps); }
  return stat[c];
}`;

/** dβ = Σdy and dγ = Σdy·(x − mean)·invstd of each channel from its blocks. */
export const batchNormBackwardFinalizeKernel = finalizeKernel("batchnorm_backward_finalize", {
  params: [...BLOCK_PARAMS, ["eps", "f32"]],
  bindings: [read("partial"), read("stat"), write("dgamma"), write("dbeta")],
  overrides: [...BN_OVERRIDES, ["EVAL", "bool"]],
}, `
  let totalDy = wgSum(first, lid);
  let dot = wgSum(second, lid);
  if (lid == 0u) { dbeta[c] = totalDy; dgamma[c] = dot * channelInvstd(c); }`, INVSTD);

/**
 * dx. Training (EVAL = false): mean/invstd are the saved batch statistics and dx goes through
 * them, dx = γ·invstd·((dy − dβ/count) − (x − mean)·dγ·invstd/count); evaluation (EVAL =
 * true): `stat` holds running_var and dx = dy·γ·invstd.
 */
export const batchNormBackwardInputKernel = elementwiseKernel(
  "batchnorm_backward_input", [...BN_PARAMS, ["eps", "f32"]],
  [read("dy"), read("x"), read("gamma"), read("mean"), read("stat"), read("dgamma"), read("dbeta"), write("dx")], `
  let c = (i / HW) % C;
  let invstd = channelInvstd(c);
  let a = gamma[c] * invstd;
  if (EVAL) {
    dx[i] = dy[i] * a;
  } else {
    let count = f32(P.batch * HW);
    let k = dgamma[c] * invstd / count;
    dx[i] = a * ((dy[i] - dbeta[c] / count) - (x[i] - mean[c]) * k);
  }`,
  { helpers: INVSTD, overrides: [...BN_OVERRIDES, ["EVAL", "bool"]] },
);
