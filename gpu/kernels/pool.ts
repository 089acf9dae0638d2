/**
 * WGSL for 2-D max and average pooling over NCHW planes (semantics of assembly/pool.ts).
 * Forward: one thread per output. Backward: one thread per input element gathering from the
 * windows that contain it, in increasing output order — the order in which the CPU kernel
 * scatters — so no atomics are needed and the sums match. Argmax is an i32 view of the
 * float buffer the op allocates (flat h·W + w within the plane).
 */
import { elementwiseKernel, NAN_WGSL, read, write } from "../kernel.ts";

const POOL_PARAMS = ["batch", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "OH", "OW"]
  .map((n) => [n, "u32"] as const);

/** Output window geometry and the windows containing an input pixel. */
const POOL_HELPERS = `
/** Start (may be negative) of the window of output position o along a dimension. */
fn windowStart(o: u32, stride: u32, pad: u32) -> i32 { return i32(o * stride) - i32(pad); }
/** First and one-past-last output positions whose window covers input position h. */
fn coveringOutputs(h: u32, stride: u32, pad: u32, kernel: u32, outSize: u32) -> vec2<u32> {
  let top = h + pad;
  var lo = 0u;
  if (top >= kernel) { lo = (top - kernel) / stride + 1u; }
  let hi = min(top / stride + 1u, outSize);
  return vec2<u32>(lo, max(lo, hi));
}`;

/** PyTorch avg_pool2d's divisor (ceil_mode false), with or without the padding counted. */
const AVG_DIVISOR = `${POOL_HELPERS}
fn divisor(oh: u32, ow: u32) -> i32 {
  let h0 = windowStart(oh, P.SH, P.PH);
  let w0 = windowStart(ow, P.SW, P.PW);
  let h1 = min(h0 + i32(P.KH), i32(P.H + P.PH));
  let w1 = min(w0 + i32(P.KW), i32(P.W + P.PW));
  if (INCLUDE_PAD) { return (h1 - h0) * (w1 - w0); }
  return (min(h1, i32(P.H)) - max(h0, 0)) * (min(w1, i32(P.W)) - max(w0, 0));
}`;

/** Output element i split into (plane, oh, ow) and its window clipped to the plane. */
const OUTPUT_WINDOW = `
  let ohw = P.OH * P.OW;
  let plane = i / ohw;
  let oh = (i % ohw) / P.OW;
  let ow = i % P.OW;
  let h0 = windowStart(oh, P.SH, P.PH);
  let w0 = windowStart(ow, P.SW, P.PW);
  let hs = max(h0, 0);
  let he = min(h0 + i32(P.KH), i32(P.H));
  let ws = max(w0, 0);
  let we = min(w0 + i32(P.KW), i32(P.W));
  let xb = plane * P.H * P.W;`;

/** Input element i split into (plane, h, w) and the ranges of outputs whose windows cover it. */
const INPUT_COVER = `
  let hw = P.H * P.W;
  let plane = i / hw;
  let s = i % hw;
  let rows = coveringOutputs(s / P.W, P.SH, P.PH, P.KH, P.OH);
  let cols = coveringOutputs(s % P.W, P.SW, P.PW, P.KW, P.OW);
  let ob = plane * P.OH * P.OW;
  var acc = 0.0;`;

const OVERRIDES = [["INCLUDE_PAD", "bool"]] as const;

/** Max over the window; first maximum in row-major order, a NaN wins and the last NaN is the argmax (as PyTorch). */
export const maxPoolForwardKernel = elementwiseKernel("maxpool_forward", POOL_PARAMS,
  [read("x"), write("y"), write("argmax", "i32")], `${OUTPUT_WINDOW}
  var best = 0.0;
  var bi = -1;
  for (var h = hs; h < he; h = h + 1) {
    for (var w = ws; w < we; w = w + 1) {
      let v = x[xb + u32(h * i32(P.W) + w)];
      if (isNan(v) || bi < 0 || (!isNan(best) && v > best)) { best = v; bi = h * i32(P.W) + w; }
    }
  }
  y[i] = best;
  argmax[i] = max(bi, 0);`,
  { helpers: POOL_HELPERS + NAN_WGSL });

export const maxPoolBackwardKernel = elementwiseKernel("maxpool_backward", POOL_PARAMS,
  [read("dy"), read("argmax", "i32"), write("dx")], `${INPUT_COVER}
  for (var oh = rows.x; oh < rows.y; oh = oh + 1u) {
    for (var ow = cols.x; ow < cols.y; ow = ow + 1u) {
      let o = ob + oh * P.OW + ow;
      if (argmax[o] == i32(s)) { acc = acc + dy[o]; }
    }
  }
  dx[i] = acc;`,
  { helpers: POOL_HELPERS });

export const avgPoolForwardKernel = elementwiseKernel("avgpool_forward", POOL_PARAMS, [read("x"), write("y")], `${OUTPUT_WINDOW}
  var sum = 0.0;
  for (var h = hs; h < he; h = h + 1) {
    for (var w = ws; w < we; w = w + 1) { sum = sum + x[xb + u32(h * i32(P.W) + w)]; }
  }
  let d = divisor(oh, ow);
  y[i] = select(0.0, sum / f32(d), d > 0);`,
  { helpers: AVG_DIVISOR, overrides: OVERRIDES });

export const avgPoolBackwardKernel = elementwiseKernel("avgpool_backward", POOL_PARAMS, [read("dy"), write("dx")], `${INPUT_COVER}
  for (var oh = rows.x; oh < rows.y; oh = oh + 1u) {
    for (var ow = cols.x; ow < cols.y; ow = ow + 1u) {
      let d = divisor(oh, ow);
      if (d > 0) { acc = acc + dy[ob + oh * P.OW + ow] / f32(d); }
    }
  }
  dx[i] = acc;`,
  { helpers: AVG_DIVISOR, overrides: OVERRIDES });
