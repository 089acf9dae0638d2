/**
 * Logit statistics, the measure the PowerGrad paper (Das et al., arXiv 2111.12495) explains its
 * effect with: PowerGrad's flatter pull on the logits lets them grow, so the mean logit norm
 * rises as α falls. Per sample z ∈ R^C, the four figures of the authors' `LStat`, each a mean
 * over samples:
 *
 *   norm      ‖z‖₂
 *   absMean   |mean_c z_c|
 *   absMax    |max_c z_c|
 *   variance  var_c z_c, with the C − 1 divisor (torch.var's default)
 *
 * Sums run in float64 over samples in order, so a whole split summed batch by batch
 * (`LogitStatsSum`) gives the same bits whatever the batch size. Works on values already read
 * back from any backend.
 */
import { ShapeError } from "../errors.ts";
import type { Tensor } from "../tensor.ts";

export interface LogitStats {
  /** Mean over samples of ‖z‖₂. */
  norm: number;
  /** Mean over samples of |mean over classes of z|. */
  absMean: number;
  /** Mean over samples of |max over classes of z|. */
  absMax: number;
  /** Mean over samples of the variance of z over classes (divisor C − 1). */
  variance: number;
  /** Samples the means are over. */
  samples: number;
}

/** Running sums of the four statistics over batches of logits. */
export class LogitStatsSum {
  private norm = 0;
  private absMean = 0;
  private absMax = 0;
  private variance = 0;
  private samples = 0;

  /** Add a batch: `z` holds rows of `classes` logits, row-major ([N, C]). */
  add(z: ArrayLike<number>, classes: number): void {
    if (!Number.isInteger(classes) || classes < 2 || z.length % classes !== 0) {
      throw new ShapeError(`logit statistics: need [N, C] logits with C ≥ 2; got ${z.length} values for ${classes} classes`);
    }
    for (let row = 0; row < z.length; row += classes) {
      let sum = 0;
      let squares = 0;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        const v = z[row + c];
        sum += v;
        squares += v * v;
        if (v > max) max = v;
      }
      const mean = sum / classes;
      let deviations = 0; // a second pass: Σz² − C·mean² would cancel badly for large logits
      for (let c = 0; c < classes; c++) deviations += (z[row + c] - mean) ** 2;
      this.norm += Math.sqrt(squares);
      this.absMean += Math.abs(mean);
      this.absMax += Math.abs(max);
      this.variance += deviations / (classes - 1);
      this.samples++;
    }
  }

  result(): LogitStats {
    const n = this.samples || NaN; // no samples: every mean is undefined, not 0
    return { norm: this.norm / n, absMean: this.absMean / n, absMax: this.absMax / n, variance: this.variance / n, samples: this.samples };
  }
}

/** The statistics of one batch of logits, [N, C]. */
export async function logitStats(logits: Tensor): Promise<LogitStats> {
  if (logits.rank !== 2) throw new ShapeError(`logit statistics: need [N, C] logits, got shape [${logits.shape.join(", ")}]`);
  const sums = new LogitStatsSum();
  sums.add(await logits.data(), logits.shape[1]);
  return sums.result();
}
