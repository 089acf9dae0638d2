/**
 * How a grid tool (bench/powergrad.ts, bench/optimisers.ts) starts, logs and ends: on the plain
 * CPU kernels and the direct convolutions; progress lines stamped with the time and pid; its
 * exit code from main; a RetrogradError printed as one line under the tool's name (exit 2 for
 * a bad flag or a grid that does not match its directory, 1 otherwise), anything else thrown
 * as the bug it is.
 */
import { RetrogradError } from "../../src/errors.ts";
import { setConvAlgorithm, setCpuKernels } from "../../src/backend/cpu/index.ts";
import { UsageError } from "../../cli/flags.ts";
import { GridError } from "./spec.ts";

/** A progress line on stderr, stamped with the time and the process (several may share a grid). */
export function logLine(line: string): void {
  process.stderr.write(`[${new Date().toISOString()} pid ${process.pid}] ${line}\n`);
}

export async function runTool(tool: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  // A grid's runs must end with the same bits whichever runtime or machine trains them (workers
  // may be Node 20, whose default is plain, and Deno, whose default is relaxed on an FMA CPU),
  // and the grids so far were trained on the plain build: every worker uses it.
  await setCpuKernels("plain");
  // and on the direct convolutions, on which the grids so far were trained too ("auto", the
  // default since #19, rounds differently)
  setConvAlgorithm("direct");
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof RetrogradError)) throw error;
    process.stderr.write(`${tool}: ${error.message}\n`);
    process.exitCode = error instanceof UsageError || error instanceof GridError ? 2 : 1;
  }
}
