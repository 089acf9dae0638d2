/**
 * The statistics of the grid's report: mean and sample standard deviation over seeds, and
 * the difference of an arm to the baseline paired by seed. Pairing is right here because a
 * seed fixes the initial weights and the order of the batches for every α alike, so the
 * per-seed differences have less spread than the arms themselves.
 */

export interface MeanStd {
  mean: number;
  /** Sample standard deviation (n − 1); NaN for a single value. */
  std: number;
  n: number;
}

export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, std, n };
}

export interface Difference {
  /** Mean over the shared seeds of (arm − baseline). */
  mean: number;
  /** Standard error of that mean: std of the differences / √n (NaN below two pairs). */
  se: number;
  n: number;
}

/** arm − baseline over the seeds both have. */
export function pairedDifference(baseline: ReadonlyMap<number, number>, arm: ReadonlyMap<number, number>): Difference {
  const diffs = [...arm].filter(([seed]) => baseline.has(seed)).map(([seed, v]) => v - baseline.get(seed)!);
  const { mean, std, n } = meanStd(diffs);
  return { mean, se: std / Math.sqrt(n), n };
}
