/** `retrograd plot DIR… [--out FILE]`: overlay the curves of several runs in one SVG. */
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { renderCurves, type Run } from "../src/io/plot.ts";
import { parseRecord } from "../src/io/records.ts";
import type { EpochRecord } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { writeAtomic } from "./files.ts";

export const PLOT_FLAGS: Flag[] = [
  { name: "out", type: "string", default: "curves.svg", help: "SVG file to write" },
];

export async function readRun(dir: string): Promise<Run> {
  const text = await readFile(join(dir, "metrics.jsonl"), "utf8").catch(() => {
    throw new UsageError(`plot: ${dir} has no metrics.jsonl (is it a retrograd run directory?)`);
  });
  const history = text.split("\n").filter(Boolean).map((l) => parseRecord(l) as EpochRecord).filter((r) => r.type === "epoch");
  return { name: basename(dir.replace(/\/+$/, "")), history };
}

export async function plot(flags: FlagValues & { _: string[] }): Promise<number> {
  const dirs = flags._;
  if (dirs.length === 0) throw new UsageError("plot needs one or more run directories");
  const runs = await Promise.all(dirs.map(readRun));
  await writeAtomic(flags.out as string, renderCurves(runs));
  process.stdout.write(`wrote ${flags.out} (${runs.length} runs)\n`);
  return 0;
}
