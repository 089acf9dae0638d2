/**
 * Softmax cross-entropy with label smoothing and the PowerGrad Transform (Das et al., arXiv
 * 2111.12495) built in. The forward pass and the reported loss are ordinary cross-entropy;
 * with `powerGrad: α` the backward pass sends (softmax(α·z) − q)·upstream/N instead of
 * (softmax(z) − q)·upstream/N, computed from the saved logits in one fused kernel (never by
 * raising p to α, which underflows). α = 1 is the ordinary gradient. ops/powergrad.ts writes
 * the same rule out from ops, as the reference this kernel is checked against.
 */
import { record } from "../autograd.ts";
import { ShapeError, ValueError } from "../errors.ts";
import { empty, Tensor } from "../tensor.ts";
import { broadcast4, expectRank, fmt } from "./util.ts";

export interface CrossEntropyOptions {
  reduction?: "mean" | "sum";
  labelSmoothing?: number;
  /** PowerGrad α in (0, 1]; 1 (the default) is plain cross-entropy. */
  powerGrad?: number;
}

export type Labels = Int32Array | readonly number[] | Tensor;

/** Labels as an int32 device buffer, each checked to be a class index. */
function labelBuffer(labels: Labels, N: number, C: number, like: Tensor): Tensor {
  const values = labels instanceof Tensor ? labels.dataSync() : labels;
  if (values.length !== N) {
    throw new ShapeError(`crossEntropy: ${values.length} labels for ${N} rows of logits`);
  }
  const ints = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const v = values[i];
    if (!Number.isInteger(v) || v < 0 || v >= C) {
      throw new ValueError(`crossEntropy: label ${i} is ${v}, not a class index in [0, ${C})`);
    }
    ints[i] = v;
  }
  const t = empty([N], like.backend);
  t.backend.write(t.buffer, ints);
  return t;
}

export function crossEntropy(logits: Tensor, labels: Labels, opts: CrossEntropyOptions = {}): Tensor {
  expectRank("crossEntropy", "logits", logits, 2);
  const [N, C] = logits.shape;
  const reduction = opts.reduction ?? "mean";
  const smoothing = opts.labelSmoothing ?? 0;
  const alpha = opts.powerGrad ?? 1;
  if (reduction !== "mean" && reduction !== "sum") {
    throw new ValueError(`crossEntropy: reduction must be "mean" or "sum", got ${JSON.stringify(reduction)}`);
  }
  if (!(smoothing >= 0 && smoothing <= 1)) throw new ValueError(`crossEntropy: labelSmoothing must be in [0, 1], got ${smoothing}`);
  if (!(alpha > 0 && alpha <= 1)) throw new ValueError(`crossEntropy: powerGrad α must be in (0, 1], got ${alpha}`);
  if (N === 0) throw new ShapeError(`crossEntropy: empty batch, logits ${fmt(logits.shape)}`);

  const backend = logits.backend;
  const target = labelBuffer(labels, N, C, logits);
  const perSample = empty([N], backend);
  const xent = { logits: logits.buffer, labels: target.buffer, N, C, smoothing };
  backend.softmaxCrossEntropy(xent, perSample.buffer);
  const scale = reduction === "mean" ? 1 / N : 1;
  const loss = empty([], backend);
  backend.reduceBroadcast(perSample.buffer, loss.buffer, broadcast4([N], [1], [1]));
  if (scale !== 1) backend.scale(loss.buffer, loss.buffer, scale);
  perSample.dispose();

  const out = record("crossEntropy", loss, [logits], [logits, target], (dy, [z, t]) => {
    const dz = empty([N, C], backend);
    backend.softmaxCrossEntropyBackward({ ...xent, logits: z.buffer, labels: t.buffer }, dz.buffer, alpha, scale);
    // Multiply by the upstream gradient on the device (1 for a plain loss.backward()).
    backend.binary("mul", dz.buffer, dy.buffer, dz.buffer, broadcast4([N * C], [N * C], [1]));
    return [dz];
  });
  target.dispose();
  return out;
}
