// 2-D pooling over x [N,C,H,W] → y [N,C,OH,OW] (OH/OW given by the caller):
// max pooling (padding acts as −inf, argmax = flat h*W+w index within the plane,
// ties → first maximum in row-major window order; a NaN is the maximum, and the last NaN
// in the window its argmax, as in PyTorch) and average pooling with PyTorch avg_pool2d
// semantics (ceil_mode false, optional count_include_pad), plus backward passes. Backward
// kernels zero dx and accumulate in a fixed order.

/** Max pooling forward; argmax is i32 [N,C,OH,OW]. */
export function maxpool_forward(x: usize, y: usize, argmax: usize, N: i32, C: i32, H: i32, W: i32,
                                KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, OH: i32, OW: i32): void {
  const planes = N * C;
  const HW = H * W, OHW = OH * OW;
  for (let pl = 0; pl < planes; pl++) {
    const xp = x + (<usize>pl * <usize>HW << 2);
    const yp = y + (<usize>pl * <usize>OHW << 2);
    const ap = argmax + (<usize>pl * <usize>OHW << 2);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = max(h0, 0), he = min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * SW - PW;
        const ws = max(w0, 0), we = min(w0 + KW, W);
        let best: f32 = -Infinity;
        let bi: i32 = -1;
        for (let h = hs; h < he; h++) {
          const row = xp + (<usize>(h * W) << 2);
          for (let w = ws; w < we; w++) {
            const v = load<f32>(row + (<usize>w << 2));
            // NaN propagates as in PyTorch's kernels: every NaN takes over, so the last one wins
            if (v > best || v != v || bi < 0) {
              best = v;
              bi = h * W + w;
            }
          }
        }
        const o = <usize>(oh * OW + ow) << 2;
        store<f32>(yp + o, best);
        store<i32>(ap + o, bi < 0 ? 0 : bi);
      }
    }
  }
}

/** Max pooling backward: dx = 0; dx[plane, argmax] += dy. */
export function maxpool_backward(dy: usize, argmax: usize, dx: usize, N: i32, C: i32, H: i32, W: i32,
                                 OH: i32, OW: i32): void {
  const planes = N * C;
  const HW = H * W, OHW = OH * OW;
  memory.fill(dx, 0, <usize>planes * <usize>HW << 2);
  for (let pl = 0; pl < planes; pl++) {
    const dxp = dx + (<usize>pl * <usize>HW << 2);
    const dyp = dy + (<usize>pl * <usize>OHW << 2);
    const ap = argmax + (<usize>pl * <usize>OHW << 2);
    for (let i = 0; i < OHW; i++) {
      const o = <usize>i << 2;
      const p = dxp + (<usize>load<i32>(ap + o) << 2);
      store<f32>(p, load<f32>(p) + load<f32>(dyp + o));
    }
  }
}

// @ts-ignore: decorator
@inline
function avgDivisor(oh: i32, ow: i32, H: i32, W: i32, KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32,
                    countIncludePad: i32): i32 {
  const h0 = oh * SH - PH, w0 = ow * SW - PW;
  const h1 = min(h0 + KH, H + PH), w1 = min(w0 + KW, W + PW);
  if (countIncludePad) return (h1 - h0) * (w1 - w0);
  return (min(h1, H) - max(h0, 0)) * (min(w1, W) - max(w0, 0));
}

/** Average pooling forward (PyTorch avg_pool2d, ceil_mode false). */
export function avgpool_forward(x: usize, y: usize, N: i32, C: i32, H: i32, W: i32,
                                KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, OH: i32, OW: i32,
                                countIncludePad: i32): void {
  const planes = N * C;
  const HW = H * W, OHW = OH * OW;
  for (let pl = 0; pl < planes; pl++) {
    const xp = x + (<usize>pl * <usize>HW << 2);
    const yp = y + (<usize>pl * <usize>OHW << 2);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = max(h0, 0), he = min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * SW - PW;
        const ws = max(w0, 0), we = min(w0 + KW, W);
        let s: f32 = 0;
        for (let h = hs; h < he; h++) {
          const row = xp + (<usize>(h * W) << 2);
          for (let w = ws; w < we; w++) s += load<f32>(row + (<usize>w << 2));
        }
        const d = avgDivisor(oh, ow, H, W, KH, KW, SH, SW, PH, PW, countIncludePad);
        store<f32>(yp + (<usize>(oh * OW + ow) << 2), d > 0 ? s / <f32>d : 0);
      }
    }
  }
}

/** Average pooling backward: dx = 0; each window's dx += dy / divisor. */
export function avgpool_backward(dy: usize, dx: usize, N: i32, C: i32, H: i32, W: i32,
                                 KH: i32, KW: i32, SH: i32, SW: i32, PH: i32, PW: i32, OH: i32, OW: i32,
                                 countIncludePad: i32): void {
  const planes = N * C;
  const HW = H * W, OHW = OH * OW;
  memory.fill(dx, 0, <usize>planes * <usize>HW << 2);
  for (let pl = 0; pl < planes; pl++) {
    const dxp = dx + (<usize>pl * <usize>HW << 2);
    const dyp = dy + (<usize>pl * <usize>OHW << 2);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = max(h0, 0), he = min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * SW - PW;
        const ws = max(w0, 0), we = min(w0 + KW, W);
        const d = avgDivisor(oh, ow, H, W, KH, KW, SH, SW, PH, PW, countIncludePad);
        if (d <= 0) continue;
        const g = load<f32>(dyp + (<usize>(oh * OW + ow) << 2)) / <f32>d;
        for (let h = hs; h < he; h++) {
          const row = dxp + (<usize>(h * W) << 2);
          for (let w = ws; w < we; w++) {
            const p = row + (<usize>w << 2);
            store<f32>(p, load<f32>(p) + g);
          }
        }
      }
    }
  }
}
