/**
 * WGSL for the row reductions: reduce_broadcast (the gradient of a broadcast: sum x back over
 * the dims where the output's stride is 0, as assembly/elementwise.ts defines it) and softmax
 * cross-entropy forward and backward (assembly/loss.ts), including the fused PowerGrad
 * backward (softmax(α·z) − q)·scale. Each output row is one workgroup reducing with
 * wgSum/wgMax; reduce_broadcast with short rows uses one thread per output instead.
 */
import { entryPoint, type KernelSpec, read, workgroupReductions, write } from "../kernel.ts";

/** Threads per row workgroup. */
export const ROW_WORKGROUP = 64;

/** At most this many summands per output: one thread per output rather than a workgroup. */
export const SHORT_REDUCTION = 32;

const four = (prefix: string) => [0, 1, 2, 3].map((k) => [`${prefix}${k}`, "u32"] as const);

/**
 * Output j's first x offset from its coordinates on the kept dims (kd: sizes, ky: y strides,
 * kx: x strides), and the x offset of summand r from its mixed-radix digits over the reduced
 * dims (rd: sizes, rx: x strides). Unused slots have size 1 and stride 0.
 */
const BROADCAST_OFFSETS = `
fn keptOffset(j: u32) -> u32 {
  return ((j / P.ky0) % P.kd0) * P.kx0 + ((j / P.ky1) % P.kd1) * P.kx1
       + ((j / P.ky2) % P.kd2) * P.kx2 + ((j / P.ky3) % P.kd3) * P.kx3;
}
fn reducedOffset(r: u32) -> u32 {
  let r3 = r % P.rd3;
  let t2 = r / P.rd3;
  let r2 = t2 % P.rd2;
  let t1 = t2 / P.rd2;
  return (t1 / P.rd1) * P.rx0 + (t1 % P.rd1) * P.rx1 + r2 * P.rx2 + r3 * P.rx3;
}`;

function reduceBroadcastKernel(perThread: boolean): KernelSpec {
  const entry = perThread
    ? entryPoint(ROW_WORKGROUP, "j", "P.ySize", `
  let base = keptOffset(j);
  var s = 0.0;
  for (var r = 0u; r < P.R; r = r + 1u) { s = s + x[base + reducedOffset(r)]; }
  y[j] = s;`)
    : `${workgroupReductions(ROW_WORKGROUP)}
${entryPoint(ROW_WORKGROUP, "j", "P.ySize", `
  let base = keptOffset(j);
  var s = 0.0;
  for (var r = lid; r < P.R; r = r + ${ROW_WORKGROUP}u) { s = s + x[base + reducedOffset(r)]; }
  let total = wgSum(s, lid);
  if (lid == 0u) { y[j] = total; }`, true)}`;
  return {
    key: perThread ? "reduce_broadcast_thread" : "reduce_broadcast_workgroup",
    params: [["ySize", "u32"], ["R", "u32"], ...four("kd"), ...four("ky"), ...four("kx"), ...four("rd"), ...four("rx")],
    bindings: [read("x"), write("y")],
    code: `${BROADCAST_OFFSETS}\n${entry}`,
  };
}

export const reduceBroadcastPerThread = reduceBroadcastKernel(true);
export const reduceBroadcastPerWorkgroup = reduceBroadcastKernel(false);

/** A workgroup per row n of logits [rows, C]; `body` runs with n, base (= n·C) and lid. */
function softmaxRowKernel(key: string, spec: Omit<KernelSpec, "key" | "code">, body: string): KernelSpec {
  return {
    key,
    ...spec,
    code: `${workgroupReductions(ROW_WORKGROUP)}
${entryPoint(ROW_WORKGROUP, "n", "P.rows", `
  let base = n * P.C;
  ${body.replaceAll("c += WG", `c = c + ${ROW_WORKGROUP}u`)}`, true)}`,
  };
}

/** m = max_c(α·z), s = Σ_c exp(α·z − m) over row n (α = 1 for the forward). */
const ROW_MAX_AND_SUM = `
  var mx = -3.4028234e38;
  for (var c = lid; c < P.C; c += WG) { mx = max(mx, P.alpha * logits[base + c]); }
  let m = wgMax(mx, lid);
  var se = 0.0;
  for (var c = lid; c < P.C; c += WG) { se = se + exp(P.alpha * logits[base + c] - m); }
  let s = wgSum(se, lid);`;

/** losses[n] = −Σ_c q_c·log_softmax(z_n)_c with q = (1−ε)·onehot + ε/C (uni = ε/C). */
export const softmaxXentForwardKernel = softmaxRowKernel("softmax_xent_forward", {
  params: [["rows", "u32"], ["C", "u32"], ["smoothing", "f32"], ["uni", "f32"], ["alpha", "f32"]],
  bindings: [read("logits"), read("labels", "i32"), write("losses")],
}, `${ROW_MAX_AND_SUM}
  let lse = m + log(s);
  var loss = 0.0;
  if (P.uni != 0.0) {
    var t = 0.0;
    for (var c = lid; c < P.C; c += WG) { t = t + (logits[base + c] - lse); }
    loss = -P.uni * wgSum(t, lid);
  }
  if (lid == 0u) {
    let label = labels[n];
    if (label >= 0 && label < i32(P.C)) { loss = loss - (1.0 - P.smoothing) * (logits[base + u32(label)] - lse); }
    losses[n] = loss;
  }`);

/** dlogits[n, c] = (softmax(α·z_n)_c − q_c)·scale, in one pass over the saved logits. */
export const softmaxXentBackwardKernel = softmaxRowKernel("softmax_xent_backward", {
  params: [["rows", "u32"], ["C", "u32"], ["smoothing", "f32"], ["uni", "f32"], ["alpha", "f32"], ["scale", "f32"]],
  bindings: [read("logits"), read("labels", "i32"), write("dlogits")],
}, `${ROW_MAX_AND_SUM}
  let inv = 1.0 / s;
  let label = labels[n];
  for (var c = lid; c < P.C; c += WG) {
    let p = exp(P.alpha * logits[base + c] - m) * inv;
    let q = select(0.0, 1.0 - P.smoothing, i32(c) == label) + P.uni;
    dlogits[base + c] = (p - q) * P.scale;
  }`);
