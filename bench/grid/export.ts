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
export async function exportResults(spec: GridSpec, outDir: string, target: string): Promise<number> {
  let copied = 0;
  for (const run of orderedRuns(spec).filter((r) => isFinished(outDir, r))) {
    for (const file of ["config.json", RESULT_FILE]) {
      await writeAtomic(join(target, run.name, file), readFileSync(join(outDir, run.name, file)));
    }
    copied++;
  }
  return copied;
}
