/**
 * The PowerGrad experiment (Das et al., arXiv 2111.12495) as a resumable grid: rows (a model
 * at a width multiplier, for some epochs) × α × seeds on Fashion-MNIST, the paper's recipe
 * for every run. Any number of processes may work on one grid (one thread each uses this
 * machine's cores best); each run checkpoints every epoch and resumes where it stopped, so
 * the grid survives being killed at any moment: start the same command again.
 *
 *   node build/powergrad.mjs [flags]          (Deno: deno run -A bench/powergrad.ts [flags])
 *     --report       write report.md and the plots from the finished runs, say what is left
 *     --export DIR   copy the finished runs' config.json and result.json to DIR
 *     --figures DIR  write the paper's measures as figures (logit norms; filter norms without
 *                    BatchNorm) and a table of them (figures.md) into DIR
 *
 * bench/grid/ holds the parts: spec (rows, names, order, recipe), claim (which process holds
 * a run), run (training and measuring one run, the work loop), report, figures, export.
 */
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { installNodeThreads } from "../cli/node_threads.ts";
import { loadData } from "../cli/datasets.ts";
import { writeAtomic } from "../cli/files.ts";
import { type Flag, helpText, parseFlags, UsageError } from "../cli/flags.ts";
import { logLine, runTool } from "./grid/entry.ts";
import { type GridSpec, orderedRuns, parseRow } from "./grid/spec.ts";
import { work } from "./grid/run.ts";
import { buildReport } from "./grid/report.ts";
import { exportResults } from "./grid/export.ts";
import { buildFigures } from "./grid/figures.ts";

const FLAGS: Flag[] = [
  // The defaults are the grid docs/powergrad.md documents (its calibration says why these rows and epochs).
  { name: "rows", type: "list", default: "mlp@0.25:60,mlp@0.5:60,mlp@1:60,resnet20@0.125:20,resnet20-nonorm@0.125:20+lr0.01,resnet20-nonorm@0.125:20+lr0.01+agcnogain0.01", help: "model[@width][:epochs][+lr<rate>][+agc<λ> or +agcnogain<λ>: AGC, or AGC with the skip gains unclipped] per row, comma-separated (e.g. resnet20@0.25:15,resnet20-nonorm@0.25:15+lr0.02,resnet20-nonorm@0.25:15+agcnogain0.01)" },
  { name: "epochs", type: "int", default: 20, min: 1, help: "epochs of rows that do not give their own" },
  { name: "alphas", type: "list", default: "1,0.5,0.25,0.1", help: "PowerGrad α of each arm (1: the baseline, needed for differences)" },
  { name: "seeds", type: "list", default: "0,1,2", help: "seeds of each (row, α)" },
  { name: "dataset", type: "string", default: "fashion-mnist", choices: ["fashion-mnist", "mnist", "kmnist", "synthetic"], help: "dataset" },
  { name: "data", type: "string", default: undefined, help: "directory holding the dataset files" },
  { name: "subset", type: "int", default: 60000, min: 1, help: "train on the first N training images" },
  { name: "test-subset", type: "int", default: 10000, min: 1, help: "test on the first N test images" },
  { name: "batch-size", type: "int", default: 128, min: 1, help: "images per step" },
  { name: "lr", type: "number", default: 0.1, min: 0, exclusiveMin: true, help: "peak learning rate" },
  { name: "augment", type: "string", default: "standard", choices: ["none", "standard"], help: "augmentation of the training batches" },
  { name: "threads", type: "int", default: 1, min: 1, max: 256, help: "CPU threads of this process (results are the same for any count)" },
  { name: "out", type: "string", default: "runs/powergrad-grid", help: "the grid's directory (one subdirectory per run)" },
  { name: "poll", type: "number", default: 30, min: 0, exclusiveMin: true, help: "seconds between looks while other processes hold the last runs" },
  { name: "report", type: "boolean", default: false, help: "write report.md and the plots into --out from the finished runs; train nothing" },
  { name: "export", type: "string", default: undefined, help: "copy the finished runs' config.json and result.json to this directory; train nothing" },
  { name: "figures", type: "string", default: undefined, help: "write the logit-norm and filter-norm figures of the finished runs and figures.md into this directory; train nothing" },
];

function numbers(flag: string, values: string[]): number[] {
  return values.map((v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${flag}: "${v}" is not a number`);
    return n;
  });
}

function gridSpec(flags: ReturnType<typeof parseFlags>): GridSpec {
  const list = (name: string) => (typeof flags[name] === "string" ? (flags[name] as string).split(",") : flags[name] as string[]);
  const alphas = numbers("alphas", list("alphas"));
  const bad = alphas.find((a) => !(a > 0 && a <= 1));
  if (bad !== undefined) throw new UsageError(`--alphas: α must be in (0, 1], got ${bad}`);
  const seeds = numbers("seeds", list("seeds"));
  if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new UsageError(`--seeds: seeds are integers ≥ 0, got ${seeds.join(",")}`);
  return {
    rows: list("rows").map((text) => parseRow(text, flags.epochs as number)),
    alphas,
    seeds,
    recipe: {
      dataset: flags.dataset as string, subset: flags.subset as number, testSubset: flags["test-subset"] as number,
      batchSize: flags["batch-size"] as number, lr: flags.lr as number, augment: flags.augment as "none" | "standard",
    },
  };
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help")) {
    process.stdout.write(helpText("powergrad grid", "train, resume or report the PowerGrad grid (bench/powergrad.ts)", FLAGS));
    return 0;
  }
  const flags = parseFlags(argv, FLAGS);
  const spec = gridSpec(flags);
  const outDir = flags.out as string;
  const log = logLine;
  if (flags.report) {
    const report = buildReport(spec, outDir, `node build/powergrad.mjs ${argv.join(" ")}`);
    await writeAtomic(join(outDir, "report.md"), report.markdown);
    for (const [name, svg] of report.plots) await writeAtomic(join(outDir, name), svg);
    process.stdout.write(report.markdown);
    log(`report: ${report.finished} of ${report.total} runs finished; report.md and ${report.plots.size} plot(s) in ${outDir}`);
    return 0;
  }
  if (flags.figures) {
    const figures = buildFigures(spec, outDir);
    const target = flags.figures as string;
    await writeAtomic(join(target, "figures.md"), figures.markdown);
    for (const [name, svg] of figures.plots) await writeAtomic(join(target, name), svg);
    process.stdout.write(figures.markdown);
    log(`figures: figures.md and ${figures.plots.size} plot(s) in ${target}`);
    return 0;
  }
  if (flags.export) {
    const copied = await exportResults(spec, outDir, flags.export as string);
    log(`export: copied ${copied} finished run(s) of ${orderedRuns(spec).length} to ${flags.export}`);
    return 0;
  }
  installNodeThreads();
  const threads = await rg.setThreads(flags.threads as number);
  const { recipe } = spec;
  const data = await loadData(recipe.dataset, flags.data as string | undefined, 0);
  const first = (set: rg.data.Dataset, n: number) => (n < set.n ? rg.data.subset(set, Array.from({ length: n }, (_, i) => i)) : set);
  log(`grid of ${orderedRuns(spec).length} runs in ${outDir}, ${threads} thread(s)`);
  await work({
    spec, outDir, pollSeconds: flags.poll as number, log,
    data: { ...data, train: first(data.train, recipe.subset), test: first(data.test, recipe.testSubset) },
  });
  log("every run of the grid has finished");
  await rg.setThreads(1); // let Deno exit: it stays alive while workers exist
  return 0;
}

await runTool("powergrad", main);
