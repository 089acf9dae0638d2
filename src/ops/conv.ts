/**
 * 2-D convolution (NCHW, weights [O, C/groups, KH, KW]) with stride, padding, dilation and
 * groups (depthwise when groups = C). Forward and both backward passes are single kernel
 * calls; a bias is an ordinary broadcast add on top, so its gradient comes for free.
 */
import type { ConvGeometry } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { reshape } from "./shape.ts";
import { expectRank, fmt, sameBackend } from "./util.ts";

export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new ValueError(`${op}: ${name} must be integers ≥ ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

export function conv2dGeometry(x: Tensor, weight: Tensor, opts: Conv2dOptions): ConvGeometry {
  expectRank("conv2d", "input", x, 4);
  expectRank("conv2d", "weight", weight, 4);
  const [N, C, H, W] = x.shape;
  const [O, CperG, KH, KW] = weight.shape;
  const G = opts.groups ?? 1;
  const [SH, SW] = pair("conv2d", "stride", opts.stride ?? 1, 1);
  const [PH, PW] = pair("conv2d", "padding", opts.padding ?? 0, 0);
  const [DH, DW] = pair("conv2d", "dilation", opts.dilation ?? 1, 1);
  if (!Number.isInteger(G) || G < 1 || C % G !== 0 || O % G !== 0) {
    throw new ShapeError(`conv2d: groups=${G} must divide input channels (${C}) and output channels (${O})`);
  }
  if (CperG !== C / G) {
    throw new ShapeError(`conv2d: input ${fmt(x.shape)} has ${C} channels, so weight ${fmt(weight.shape)} needs dim 1 = ${C / G} (groups=${G})`);
  }
  const OH = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
  if (OH < 1 || OW < 1) {
    throw new ShapeError(`conv2d: kernel ${KH}×${KW} (dilation ${DH}×${DW}) does not fit input ${fmt(x.shape)} with padding ${PH}×${PW}`);
  }
  return { N, C, H, W, O, KH, KW, SH, SW, PH, PW, DH, DW, G, OH, OW };
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  sameBackend("conv2d", x, weight);
  const g = conv2dGeometry(x, weight, opts);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.O)) {
    throw new ShapeError(`conv2d: bias ${fmt(bias.shape)} does not match ${g.O} output channels`);
  }
  const backend = x.backend;
  const y = empty([g.N, g.O, g.OH, g.OW], backend);
  backend.conv2dForward(x.buffer, weight.buffer, y.buffer, g);
  const out = record("conv2d", y, [x, weight], [x, weight], (dy, [sx, sw]) => {
    let dx: Tensor | null = null;
    let dw: Tensor | null = null;
    if (x.requiresGrad) {
      dx = empty(x.shape, backend);
      backend.conv2dBackwardInput(dy.buffer, sw.buffer, dx.buffer, g);
    }
    if (weight.requiresGrad) {
      dw = empty(weight.shape, backend);
      backend.conv2dBackwardWeight(dy.buffer, sx.buffer, dw.buffer, g);
    }
    return [dx, dw];
  });
  if (!bias) return out;
  const b4 = reshape(bias, [1, g.O, 1, 1]);
  const withBias = add(out, b4);
  out.dispose();
  b4.dispose();
  return withBias;
}
