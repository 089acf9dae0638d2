/**
 * Batch normalisation over (N, H, W) per channel, PyTorch semantics: training mode
 * normalises with the batch statistics (biased variance) and moves the running statistics
 * by `momentum` (unbiased variance) when they are given; evaluation mode uses the running
 * statistics. The backward pass in training mode goes through the batch statistics (one
 * fused kernel).
 *
 * batchNormRelu is relu(residual + batchNorm(x)), what a ResNet runs after most convolutions,
 * as one op: in training mode one kernel each way where the backend has the fused fast path,
 * so the normalised values are neither written nor kept (backward masks the gradient by
 * y > 0 inside the batch-norm backward, and writes the input gradient over the output
 * gradient where that buffer is free to take). Elsewhere it is the three ops composed.
 */
import type { BatchNormInput, RunningStats } from "../backend/backend.ts";
import { gradOrFresh, record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { add, relu } from "./elementwise.ts";
import { expectRank, fmt, sameBackend, sameShape } from "./util.ts";

/** PyTorch's BatchNorm defaults, for the op and the layer alike. */
export const BATCH_NORM_DEFAULTS = { momentum: 0.1, eps: 1e-5 } as const;

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** The kernels' view of the input, after checking every per-channel tensor against C. */
function normInput(
  op: string, x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions,
): BatchNormInput {
  expectRank(op, "input", x, 2, 3, 4);
  const [N, C] = x.shape;
  const HW = x.size / (N * C);
  for (const [name, t] of [["weight", weight], ["bias", bias], ["running_mean", runningMean], ["running_var", runningVar]] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== C)) {
      throw new ShapeError(`${op}: ${name} ${fmt(t.shape)} does not match ${C} channels of input ${fmt(x.shape)}`);
    }
  }
  if (!opts.training && (!runningMean || !runningVar)) {
    throw new ShapeError(`${op}: evaluation mode needs running_mean and running_var`);
  }
  if (opts.training && N * HW < 2) {
    throw new ShapeError(`${op}: training needs more than one value per channel, got input ${fmt(x.shape)}`);
  }
  return { x: x.buffer, gamma: weight.buffer, beta: bias.buffer, N, C, HW, eps: opts.eps ?? BATCH_NORM_DEFAULTS.eps };
}

/** The running statistics a training forward moves (null when there are none to move). */
function runningStats(runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions): RunningStats | null {
  return runningMean && runningVar
    ? { mean: runningMean.buffer, var: runningVar.buffer, momentum: opts.momentum ?? BATCH_NORM_DEFAULTS.momentum }
    : null;
}

export function batchNorm(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  const input = normInput("batchNorm", x, weight, bias, runningMean, runningVar, opts);
  const { C } = input;
  const backend = x.backend;
  const y = empty(x.shape, backend);
  const grads = (dy: Tensor) => ({ dx: empty(x.shape, backend), dw: empty([C], backend), db: empty([C], backend), dy });

  if (!opts.training) {
    backend.batchNormEvalForward({
      ...input, y: y.buffer, runningMean: runningMean!.buffer, runningVar: runningVar!.buffer, relu: false, residual: null,
    });
    return record("batchNorm", y, [x, weight, bias], [x, weight, runningMean!, runningVar!], (dy, [sx, sw, rm, rv]) => {
      const g = grads(dy);
      backend.batchNormBackward({
        ...input, x: sx.buffer, gamma: sw.buffer, dy: dy.buffer, stats: { kind: "running", mean: rm.buffer, var: rv.buffer },
        dx: g.dx.buffer, dgamma: g.dw.buffer, dbeta: g.db.buffer,
      });
      return [g.dx, g.dw, g.db];
    });
  }

  const mean = empty([C], backend);
  const invstd = empty([C], backend);
  backend.batchNormTrainForward({
    ...input, y: y.buffer, saveMean: mean.buffer, saveInvstd: invstd.buffer, running: runningStats(runningMean, runningVar, opts),
  });
  const out = record("batchNorm", y, [x, weight, bias], [x, weight, mean, invstd], (dy, [sx, sw, sm, si]) => {
    const g = grads(dy);
    backend.batchNormBackward({
      ...input, x: sx.buffer, gamma: sw.buffer, dy: dy.buffer, stats: { kind: "batch", mean: sm.buffer, invstd: si.buffer },
      dx: g.dx.buffer, dgamma: g.dw.buffer, dbeta: g.db.buffer,
    });
    return [g.dx, g.dw, g.db];
  });
  mean.dispose();
  invstd.dispose();
  return out;
}

/** relu(residual + batchNorm(x)) as the three ops, for backends without the training fast path. */
function batchNormReluComposed(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions, residual: Tensor | null,
): Tensor {
  const normalised = batchNorm(x, weight, bias, runningMean, runningVar, opts);
  const sum = residual ? add(residual, normalised) : normalised;
  const y = relu(sum);
  normalised.dispose();
  if (sum !== normalised) sum.dispose();
  return y;
}

/**
 * relu(residual + batchNorm(x)); the residual (x's shape) is optional. Training mode on a
 * backend with the fused kernels: one kernel each way, bitwise the values of batchNorm, add
 * and relu on the CPU backend, and the gradients of x, weight, bias and residual likewise.
 * Otherwise those three ops. Evaluation mode: one pass forward on every backend (below).
 */
export function batchNormRelu(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions, residual: Tensor | null = null,
): Tensor {
  const input = normInput("batchNormRelu", x, weight, bias, runningMean, runningVar, opts);
  if (residual) {
    sameBackend("batchNormRelu", x, residual);
    if (!sameShape(residual.shape, x.shape)) {
      throw new ShapeError(`batchNormRelu: residual ${fmt(residual.shape)} does not match input ${fmt(x.shape)}`);
    }
  }
  const backend = x.backend;
  const fusedForward = backend.batchNormReluTrainForward?.bind(backend);
  const fusedBackward = backend.batchNormReluBackward?.bind(backend);
  if (!opts.training) return batchNormReluEval(input, x, weight, bias, runningMean!, runningVar!, residual);
  if (!fusedForward || !fusedBackward) {
    return batchNormReluComposed(x, weight, bias, runningMean, runningVar, opts, residual);
  }

  const { C } = input;
  const y = empty(x.shape, backend);
  const mean = empty([C], backend);
  const invstd = empty([C], backend);
  fusedForward({
    ...input, residual: residual?.buffer ?? null, y: y.buffer, saveMean: mean.buffer, saveInvstd: invstd.buffer,
    running: runningStats(runningMean, runningVar, opts),
  });
  const inputs = residual ? [x, weight, bias, residual] : [x, weight, bias];
  const out = record("batchNormRelu", y, inputs, [y, x, weight, mean, invstd], (dy, [sy, sx, sw, sm, si]) => {
    const dx = gradOrFresh(dy);
    const dw = empty([C], backend);
    const db = empty([C], backend);
    const dres = residual?.requiresGrad ? empty(x.shape, backend) : null;
    fusedBackward({
      ...input, x: sx.buffer, gamma: sw.buffer, dy: dy.buffer, y: sy.buffer,
      stats: { kind: "batch", mean: sm.buffer, invstd: si.buffer },
      dx: dx.buffer, dgamma: dw.buffer, dbeta: db.buffer, dresidual: dres?.buffer ?? null,
    });
    return [dx, dw, db, dres];
  });
  mean.dispose();
  invstd.dispose();
  return out;
}

/**
 * batchNormRelu in evaluation mode: the running statistics' affine map, the residual and the
 * ReLU in one elementwise pass (the values of the three ops, without writing and reading back
 * two intermediate tensors); backward, the gradient masked by y > 0 is the residual's and goes
 * through batchNorm's evaluation backward, as the three ops' gradients do.
 */
function batchNormReluEval(
  input: BatchNormInput, x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor,
  residual: Tensor | null,
): Tensor {
  const backend = x.backend;
  const y = empty(x.shape, backend);
  backend.batchNormEvalForward({
    ...input, y: y.buffer, runningMean: runningMean.buffer, runningVar: runningVar.buffer, relu: true,
    residual: residual?.buffer ?? null,
  });
  const inputs = residual ? [x, weight, bias, residual] : [x, weight, bias];
  return record("batchNormRelu", y, inputs, [y, x, weight, runningMean, runningVar], (dy, [sy, sx, sw, rm, rv]) => {
    const masked = empty(x.shape, backend);
    backend.reluBackward(sy.buffer, dy.buffer, masked.buffer);
    const dx = empty(x.shape, backend);
    const dw = empty([input.C], backend);
    const db = empty([input.C], backend);
    backend.batchNormBackward({
      ...input, x: sx.buffer, gamma: sw.buffer, dy: masked.buffer, stats: { kind: "running", mean: rm.buffer, var: rv.buffer },
      dx: dx.buffer, dgamma: dw.buffer, dbeta: db.buffer,
    });
    if (residual?.requiresGrad) return [dx, dw, db, masked];
    masked.dispose();
    return [dx, dw, db, null];
  });
}
