/**
 * Elementwise ops: the four arithmetic ops with NumPy broadcasting (a per-channel [1,C,1,1]
 * scale or bias is the common case in a convnet) and a number for either operand, scalar
 * scaling, ReLU and sigmoid. The gradient of a broadcast input is the output gradient summed
 * back to the input's shape.
 */
import type { Backend, BinaryOp, DeviceBuffer } from "../backend/backend.ts";
import { record } from "../autograd.ts";
import { empty, Tensor, type Shape } from "../tensor.ts";
import { type Operand, withOperands } from "./scalar.ts";
import { broadcast4, broadcastShape, sameBackend, sameShape } from "./util.ts";

/** Sum a gradient of shape `from` back to `to` (identity when no broadcast happened). */
export function sumToShape(grad: Tensor, to: Shape): Tensor {
  if (sameShape(grad.shape, to)) return grad.detach();
  const out = empty(to, grad.backend);
  grad.backend.reduceBroadcast(grad.buffer, out.buffer, broadcast4(grad.shape, to, to));
  return out;
}

/** y = a op b, broadcast, off the tape (the ops below record; comparisons have no gradient). */
export function binaryForward(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  sameBackend(op, a, b);
  const shape = broadcastShape(op, a.shape, b.shape);
  const y = empty(shape, a.backend);
  a.backend.binary(op, a.buffer, b.buffer, y.buffer, broadcast4(shape, a.shape, b.shape, op));
  return y;
}

function addTensors(a: Tensor, b: Tensor): Tensor {
  return record("add", binaryForward("add", a, b), [a, b], [], (dy) => [
    a.requiresGrad ? sumToShape(dy, a.shape) : null,
    b.requiresGrad ? sumToShape(dy, b.shape) : null,
  ]);
}

function subTensors(a: Tensor, b: Tensor): Tensor {
  return record("sub", binaryForward("sub", a, b), [a, b], [], (dy) => [
    a.requiresGrad ? sumToShape(dy, a.shape) : null,
    b.requiresGrad ? negate(sumToShape(dy, b.shape)) : null,
  ]);
}

/** The gradient of one factor: dy·other, summed back to the factor's shape. */
function productGrad(dy: Tensor, other: Tensor, shape: Shape): Tensor {
  const full = binaryForward("mul", dy, other);
  const reduced = sumToShape(full, shape);
  full.dispose();
  return reduced;
}

function mulTensors(a: Tensor, b: Tensor): Tensor {
  return record("mul", binaryForward("mul", a, b), [a, b], [a, b], (dy, [sa, sb]) => [
    a.requiresGrad ? productGrad(dy, sb, a.shape) : null,
    b.requiresGrad ? productGrad(dy, sa, b.shape) : null,
  ]);
}

function divTensors(a: Tensor, b: Tensor): Tensor {
  const y = binaryForward("div", a, b);
  return record("div", y, [a, b], [b, y], (dy, [sb, sy]) => {
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      const q = binaryForward("div", dy, sb);
      da = sumToShape(q, a.shape);
      q.dispose();
    }
    if (b.requiresGrad) {
      // d(a/b)/db = −y/b
      const t = binaryForward("mul", dy, sy);
      const q = binaryForward("div", t, sb);
      db = negate(sumToShape(q, b.shape));
      t.dispose();
      q.dispose();
    }
    return [da, db];
  });
}

export function add(a: Operand, b: Operand): Tensor {
  return withOperands("add", [a, b], ([x, y]) => addTensors(x, y));
}

export function sub(a: Operand, b: Operand): Tensor {
  return withOperands("sub", [a, b], ([x, y]) => subTensors(x, y));
}

export function mul(a: Operand, b: Operand): Tensor {
  return withOperands("mul", [a, b], ([x, y]) => mulTensors(x, y));
}

export function div(a: Operand, b: Operand): Tensor {
  return withOperands("div", [a, b], ([x, y]) => divTensors(x, y));
}

function scaled(x: Tensor, alpha: number): Tensor {
  const y = empty(x.shape, x.backend);
  x.backend.scale(x.buffer, y.buffer, alpha);
  return y;
}

/** −x for a gradient we own (consumes x). */
function negate(x: Tensor): Tensor {
  const y = scaled(x, -1);
  x.dispose();
  return y;
}

/** alpha·x */
export function scale(x: Tensor, alpha: number): Tensor {
  return record("scale", scaled(x, alpha), [x], [], (dy) => [scaled(dy, alpha)]);
}

/** An activation whose backward needs only its output y (true of ReLU and sigmoid). */
interface Activation {
  forward(b: Backend, x: DeviceBuffer, y: DeviceBuffer): void;
  backward(b: Backend, y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void;
}

function activate(name: string, act: Activation, x: Tensor): Tensor {
  const backend = x.backend;
  const y = empty(x.shape, backend);
  act.forward(backend, x.buffer, y.buffer);
  return record(name, y, [x], [y], (dy, [sy]) => {
    const dx = empty(x.shape, backend);
    act.backward(backend, sy.buffer, dy.buffer, dx.buffer);
    return [dx];
  });
}

const RELU: Activation = {
  forward: (b, x, y) => b.reluForward(x, y),
  backward: (b, y, dy, dx) => b.reluBackward(y, dy, dx),
};

const SIGMOID: Activation = {
  forward: (b, x, y) => b.sigmoidForward(x, y),
  backward: (b, y, dy, dx) => b.sigmoidBackward(y, dy, dx),
};

export function relu(x: Tensor): Tensor {
  return activate("relu", RELU, x);
}

export function sigmoid(x: Tensor): Tensor {
  return activate("sigmoid", SIGMOID, x);
}
