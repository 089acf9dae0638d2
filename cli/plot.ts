/** `retrograd plot DIR… [--out FILE]`: overlay the curves of several runs in one SVG. */
import { basename, join } from "node:path";
import { renderCurves, type Run } from "../src/io/plot.ts";
import type { EpochRecord } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { nodeFs, writeAtomic } from "./files.ts";
import { readMetricsLog } from "./run_dir.ts";

export const PLOT_FLAGS: Flag[] = [
  { name: "out", type: "string", default: "curves.svg", help: "SVG file to write" },
];

/** A run's epoch records (metrics.jsonl: non-finite values as numbers, torn lines skipped with a warning). */
export async function readRun(dir: string, log: { write(s: string): void } = process.stderr): Promise<Run> {
  const path = join(dir, "metrics.jsonl");
  if (!(await nodeFs.exists(path))) throw new UsageError(`plot: ${dir} has no metrics.jsonl (is it a retrograd run directory?)`);
  const records = await readMetricsLog(path, log);
  const history = records.map(({ record }) => record as unknown as EpochRecord).filter((r) => r.type === "epoch");
  return { name: basename(dir.replace(/\/+$/, "")), history };
}

export async function plot(flags: FlagValues & { _: string[] }): Promise<number> {
  const dirs = flags._;
  if (dirs.length === 0) throw new UsageError("plot needs one or more run directories");
  const runs = await Promise.all(dirs.map((dir) => readRun(dir)));
  await writeAtomic(flags.out as string, renderCurves(runs), "--out");
  process.stdout.write(`wrote ${flags.out} (${runs.length} runs)\n`);
  return 0;
}
