/**
 * Copy the small files of every finished run (result.json: final figures, per-epoch curves,
 * filter norms; config.json: its settings) to another folder, laid out as the grid's own
 * directory, so results can be committed without weights or checkpoints and the report can
 * be rebuilt from the copy (`--report --out <copy>`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic } from "../../cli/files.ts";
import { isFinished, RESULT_FILE } from "./run.ts";
import { type GridSpec, orderedRuns } from "./spec.ts";

/** Returns how many runs were copied. */
export function exportResults(spec: GridSpec, outDir: string, target: string): Promise<number> {
  const finished = orderedRuns(spec).filter((r) => isFinished(outDir, r)).map((r) => r.name);
  return copyRunFiles(outDir, target, finished, ["config.json", RESULT_FILE]);
}

/** Copy `files` of each run directory named in `runs` from outDir to target; returns how many runs were copied. */
export async function copyRunFiles(outDir: string, target: string, runs: readonly string[], files: readonly string[]): Promise<number> {
  for (const run of runs) {
    for (const file of files) await writeAtomic(join(target, run, file), readFileSync(join(outDir, run, file)));
  }
  return runs.length;
}
