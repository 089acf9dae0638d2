/**
 * The PowerGrad Transform (Das et al., "PowerGrad Transform", arXiv 2111.12495) written as its
 * definition, through customGrad: the forward is ordinary cross-entropy, and the backward rule
 * sends (softmax(α·z) − q) · upstream / N to the logits instead of the true gradient
 * (softmax(z) − q) · upstream / N, q being the (smoothed) one-hot target. softmax(α·z) is
 * computed stably, from α·z minus its row maximum. This is the readable reference;
 * `crossEntropy(z, labels, { powerGrad: α })` runs the same rule as one fused kernel per
 * backend, and a test checks that the two agree within float32 rounding on both backends.
 */
import { customGrad } from "../functional.ts";
import { ValueError } from "../errors.ts";
import { tensor, type Tensor } from "../tensor.ts";
import { crossEntropy, type CrossEntropyOptions, type Labels } from "./loss.ts";
import { amax, sum } from "./reduce.ts";
import { div, mul, sub } from "./elementwise.ts";
import { exp } from "./unary.ts";

/** The (smoothed) one-hot targets q of N rows of C classes, on `like`'s backend. */
function targets(labels: Labels, N: number, C: number, smoothing: number, like: Tensor): Tensor {
  const values = labels instanceof Array || labels instanceof Int32Array ? labels : labels.dataSync();
  const q = new Float32Array(N * C).fill(smoothing / C);
  for (let i = 0; i < N; i++) q[i * C + values[i]] += 1 - smoothing;
  return tensor(q, [N, C], like.backend);
}

/** Cross-entropy whose logit gradient is PowerGrad's, composed from ops (see the file's header). */
export function powerGradCrossEntropy(
  logits: Tensor, labels: Labels, alpha: number, opts: Omit<CrossEntropyOptions, "powerGrad"> = {},
): Tensor {
  if (!(alpha > 0 && alpha <= 1)) throw new ValueError(`powerGradCrossEntropy: α must be in (0, 1], got ${alpha}`);
  const [N, C] = logits.shape;
  const perRow = (opts.reduction ?? "mean") === "mean" ? 1 / N : 1;
  const op = customGrad({
    name: "powerGradCrossEntropy",
    forward: (z) => ({ output: crossEntropy(z, labels, opts), saved: [z] }),
    backward: (dy, [z]) => {
      const scaled = mul(z, alpha);
      const stable = sub(scaled, amax(scaled, 1, true));
      const e = exp(stable);
      const p = div(e, sum(e, 1, true));
      const q = targets(labels, N, C, opts.labelSmoothing ?? 0, z);
      const g = mul(mul(sub(p, q), dy), perRow);
      for (const t of [scaled, stable, e, p, q]) t.dispose();
      return [g];
    },
  });
  return op(logits);
}
