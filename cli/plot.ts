/**
 * `retrograd plot DIR… [--out FILE]`: overlay the curves of several runs in one SVG. With
 * `--probes`, the figures of the runs' probes.jsonl instead (src/io/probe_plots.ts), one SVG per
 * kind of probe in the --out directory.
 */
import { basename, join } from "node:path";
import { renderCurves, type Run } from "../src/io/plot.ts";
import { probeFigures, type ProbeRun } from "../src/io/probe_plots.ts";
import type { EpochRecord } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { makeDirectory, nodeFs, writeAtomic } from "./files.ts";
import { readMetricsLog } from "./run_dir.ts";

export const PLOT_FLAGS: Flag[] = [
  { name: "out", type: "string", default: undefined, help: "SVG file to write (default curves.svg); with --probes, the directory for the figures (default probe-figures)" },
  { name: "probes", type: "boolean", default: false, help: "draw the runs' probes (probes.jsonl): landscape, ics, activations, histograms, curvature, logits, filters, layers" },
];

/** A run's probe records (probes.jsonl). */
async function readProbeRun(dir: string, log: { write(s: string): void } = process.stderr): Promise<ProbeRun> {
  const path = join(dir, "probes.jsonl");
  if (!(await nodeFs.exists(path))) throw new UsageError(`plot --probes: ${dir} has no probes.jsonl (was it trained with --probe?)`);
  return { name: basename(dir.replace(/\/+$/, "")), records: (await readMetricsLog(path, log)).map(({ record }) => record) };
}

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
  if (flags.probes) {
    const out = (flags.out as string | undefined) ?? "probe-figures";
    const figures = probeFigures(await Promise.all(dirs.map((dir) => readProbeRun(dir))));
    if (figures.size === 0) throw new UsageError("plot --probes: the runs' probes.jsonl hold no probe records");
    await makeDirectory(out, "--out");
    for (const [name, svg] of figures) await writeAtomic(join(out, name), svg, "--out");
    process.stdout.write(`wrote ${[...figures.keys()].map((name) => join(out, name)).join(", ")} (${dirs.length} runs)\n`);
    return 0;
  }
  const out = (flags.out as string | undefined) ?? "curves.svg";
  const runs = await Promise.all(dirs.map((dir) => readRun(dir)));
  await writeAtomic(out, renderCurves(runs), "--out");
  process.stdout.write(`wrote ${out} (${runs.length} runs)\n`);
  return 0;
}
