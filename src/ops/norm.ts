/**
 * Batch normalisation over (N, H, W) per channel, PyTorch semantics: training mode
 * normalises with the batch statistics (biased variance) and moves the running statistics
 * by `momentum` (unbiased variance); evaluation mode uses the running statistics. The
 * backward pass in training mode goes through the batch statistics (one fused kernel).
 */
import { record } from "../autograd.ts";
import { ShapeError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { expectRank, fmt } from "./util.ts";

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

export function batchNorm(
  x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor | null, runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  expectRank("batchNorm", "input", x, 2, 3, 4);
  const [N, C] = x.shape;
  const HW = x.size / (N * C);
  for (const [name, t] of [["weight", weight], ["bias", bias], ["running_mean", runningMean], ["running_var", runningVar]] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== C)) {
      throw new ShapeError(`batchNorm: ${name} ${fmt(t.shape)} does not match ${C} channels of input ${fmt(x.shape)}`);
    }
  }
  const eps = opts.eps ?? 1e-5;
  const backend = x.backend;
  const y = empty(x.shape, backend);

  if (!opts.training) {
    if (!runningMean || !runningVar) throw new ShapeError("batchNorm: evaluation mode needs running_mean and running_var");
    backend.batchNormEvalForward(x.buffer, weight.buffer, bias.buffer, runningMean.buffer, runningVar.buffer, y.buffer, N, C, HW, eps);
    return record("batchNorm", y, [x, weight, bias], [x, weight, runningMean, runningVar], (dy, [sx, sw, rm, rv]) => {
      const dx = empty(x.shape, backend);
      const dw = empty([C], backend);
      const db = empty([C], backend);
      backend.batchNormEvalBackward(dy.buffer, sx.buffer, sw.buffer, rm.buffer, rv.buffer, dx.buffer, dw.buffer, db.buffer, N, C, HW, eps);
      return [dx, dw, db];
    });
  }

  if (N * HW < 2) {
    throw new ShapeError(`batchNorm: training needs more than one value per channel, got input ${fmt(x.shape)}`);
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
