/**
 * Pooling over NCHW planes: max (the backward routes each gradient to the saved argmax),
 * average (PyTorch's count_include_pad semantics) and global average (ResNet's head).
 */
import type { PoolGeometry } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { pair, type Pair } from "./conv.ts";
import { expectRank, fmt } from "./util.ts";

export interface Pool2dOptions {
  kernel: Pair;
  stride?: Pair;
  padding?: Pair;
}

function poolGeometry(op: string, x: Tensor, opts: Pool2dOptions): PoolGeometry {
  expectRank(op, "input", x, 4);
  const [N, C, H, W] = x.shape;
  const [KH, KW] = pair(op, "kernel", opts.kernel, 1);
  const [SH, SW] = pair(op, "stride", opts.stride ?? opts.kernel, 1);
  const [PH, PW] = pair(op, "padding", opts.padding ?? 0, 0);
  if (PH > KH / 2 || PW > KW / 2) {
    throw new ShapeError(`${op}: padding ${PH}×${PW} must be at most half the kernel ${KH}×${KW}`);
  }
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  if (OH < 1 || OW < 1) throw new ShapeError(`${op}: kernel ${KH}×${KW} does not fit input ${fmt(x.shape)}`);
  return { N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW };
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  const g = poolGeometry("maxPool2d", x, opts);
  const backend = x.backend;
  const y = empty([g.N, g.C, g.OH, g.OW], backend);
  const argmax = empty(y.shape, backend);
  backend.maxPoolForward(x.buffer, y.buffer, argmax.buffer, g);
  const out = record("maxPool2d", y, [x], [argmax], (dy, [sa]) => {
    const dx = empty(x.shape, backend);
    backend.maxPoolBackward(dy.buffer, sa.buffer, dx.buffer, g);
    return [dx];
  });
  argmax.dispose();
  return out;
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions & { countIncludePad?: boolean }): Tensor {
  const g = poolGeometry("avgPool2d", x, opts);
  const includePad = opts.countIncludePad ?? true;
  const backend = x.backend;
  const y = empty([g.N, g.C, g.OH, g.OW], backend);
  backend.avgPoolForward(x.buffer, y.buffer, { ...g, countIncludePad: includePad });
  return record("avgPool2d", y, [x], [], (dy) => {
    const dx = empty(x.shape, backend);
    backend.avgPoolBackward(dy.buffer, dx.buffer, { ...g, countIncludePad: includePad });
    return [dx];
  });
}

/** Mean over each H×W plane: [N, C, H, W] → [N, C, 1, 1] (adaptive average pool to 1). */
export function globalAvgPool2d(x: Tensor): Tensor {
  expectRank("globalAvgPool2d", "input", x, 4);
  return avgPool2d(x, { kernel: [x.shape[2], x.shape[3]] });
}
