/**
 * Batch normalisation over (N, H, W) per channel, PyTorch semantics: training mode
 * normalises with the batch statistics (biased variance) and moves the running statistics
 * by `momentum` (unbiased variance); evaluation mode uses the running statistics. The
 * backward pass in training mode goes through the batch statistics (one fused kernel).
 *
 * batchNormRelu is relu(residual + batchNorm(x)), what a ResNet runs after most convolutions,
 * as one op: in training mode one kernel each way, so the normalised values are neither
 * written nor kept (backward masks the gradient by y > 0 inside the batch-norm backward, and
 * writes the input gradient over the output gradient where that buffer is free to take).
 */
import { gradOrFresh, record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { add, relu } from "./elementwise.ts";
import { expectRank, fmt, sameBackend, sameShape } from "./util.ts";

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/** N, C and H·W of the input, after checking every per-channel tensor against C. */
function channelDims(
  op: string, x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions,
): { N: number; C: number; HW: number } {
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
  return { N, C, HW };
}

export function batchNorm(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  const { N, C, HW } = channelDims("batchNorm", x, weight, bias, runningMean, runningVar, opts);
  const eps = opts.eps ?? 1e-5;
  const backend = x.backend;
  const y = empty(x.shape, backend);

  if (!opts.training) {
    backend.batchNormEvalForward(x.buffer, weight.buffer, bias.buffer, runningMean!.buffer, runningVar!.buffer, y.buffer, N, C, HW, eps);
    return record("batchNorm", y, [x, weight, bias], [x, weight, runningMean!, runningVar!], (dy, [sx, sw, rm, rv]) => {
      const dx = empty(x.shape, backend);
      const dw = empty([C], backend);
      const db = empty([C], backend);
      backend.batchNormEvalBackward(dy.buffer, sx.buffer, sw.buffer, rm.buffer, rv.buffer, dx.buffer, dw.buffer, db.buffer, N, C, HW, eps);
      return [dx, dw, db];
    });
  }

  const mean = empty([C], backend);
  const invstd = empty([C], backend);
  backend.batchNormTrainForward(
    x.buffer, weight.buffer, bias.buffer, y.buffer, mean.buffer, invstd.buffer,
    runningMean?.buffer ?? null, runningVar?.buffer ?? null, N, C, HW, opts.momentum ?? 0.1, eps,
  );
  const out = record("batchNorm", y, [x, weight, bias], [x, weight, mean, invstd], (dy, [sx, sw, sm, si]) => {
    const dx = empty(x.shape, backend);
    const dw = empty([C], backend);
    const db = empty([C], backend);
    backend.batchNormBackward(dy.buffer, sx.buffer, sw.buffer, sm.buffer, si.buffer, dx.buffer, dw.buffer, db.buffer, N, C, HW);
    return [dx, dw, db];
  });
  mean.dispose();
  invstd.dispose();
  return out;
}

/**
 * relu(residual + batchNorm(x)); the residual (x's shape) is optional. Training mode: one
 * kernel each way, bitwise the values of batchNorm, add and relu on the CPU backend, and the
 * gradients of x, weight, bias and residual likewise. Evaluation mode: those three ops.
 */
export function batchNormRelu(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions, residual: Tensor | null = null,
): Tensor {
  const { N, C, HW } = channelDims("batchNormRelu", x, weight, bias, runningMean, runningVar, opts);
  if (residual) {
    sameBackend("batchNormRelu", x, residual);
    if (!sameShape(residual.shape, x.shape)) {
      throw new ShapeError(`batchNormRelu: residual ${fmt(residual.shape)} does not match input ${fmt(x.shape)}`);
    }
  }
  if (!opts.training) {
    const normalised = batchNorm(x, weight, bias, runningMean, runningVar, opts);
    const sum = residual ? add(residual, normalised) : normalised;
    const y = relu(sum);
    normalised.dispose();
    if (sum !== normalised) sum.dispose();
    return y;
  }

  const backend = x.backend;
  const y = empty(x.shape, backend);
  const mean = empty([C], backend);
  const invstd = empty([C], backend);
  backend.batchNormReluTrainForward(
    x.buffer, weight.buffer, bias.buffer, residual?.buffer ?? null, y.buffer, mean.buffer, invstd.buffer,
    runningMean?.buffer ?? null, runningVar?.buffer ?? null, N, C, HW, opts.momentum ?? 0.1, opts.eps ?? 1e-5,
  );
  const inputs = residual ? [x, weight, bias, residual] : [x, weight, bias];
  const out = record("batchNormRelu", y, inputs, [y, x, weight, mean, invstd], (dy, [sy, sx, sw, sm, si]) => {
    const dx = gradOrFresh(dy);
    const dw = empty([C], backend);
    const db = empty([C], backend);
    const dres = residual?.requiresGrad ? empty(x.shape, backend) : null;
    backend.batchNormReluBackward(
      dy.buffer, sy.buffer, sx.buffer, sw.buffer, sm.buffer, si.buffer, dx.buffer, dw.buffer, db.buffer,
      dres?.buffer ?? null, N, C, HW,
    );
    return [dx, dw, db, dres];
  });
  mean.dispose();
  invstd.dispose();
  return out;
}
