/**
 * The run directory of `retrograd train`, and what opening one checks. A run writes
 * config.json (its settings), metrics.jsonl, checkpoint.safetensors, curves.svg and at the
 * end model.safetensors. A new run (--out) refuses a directory that holds anything, since
 * another run's checkpoint or metrics would mix with its own, unless --overwrite, which
 * removes the run files first. A resumed run (--resume) reads config.json back through a
 * schema, needs a checkpoint, and skips (saying so) a metrics line that a crash tore.
 * Either way, temp files that dead writers left behind are removed.
 */
import { readdir, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Fields } from "../src/io/fields.ts";
import { parseRecord } from "../src/io/records.ts";
import { CheckpointError } from "../src/errors.ts";
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { CONV_ALGORITHMS, type ConvAlgorithm } from "../src/backend/cpu/conv_algorithm.ts";
import type { CpuKernels } from "../src/backend/cpu/index.ts";
import { MADD_ROUNDINGS, type MaddRounding } from "../src/backend/cpu/madd_probe.ts";
import { readTrainConfig } from "../src/train/validate.ts";
import type { TrainConfig } from "../src/train/index.ts";
import { UsageError } from "./flags.ts";
import { FileError, makeDirectory, nodeFs, readBytes, removeStaleTemporaries, writeAtomic } from "./files.ts";
import { DATASET_NAMES } from "./datasets.ts";
import { type MemorySettings, readMemorySettings } from "./memory.ts";
import { type ProbeSettings, readProbeSettings } from "./probes.ts";

export const RUN_FILES = ["config.json", "metrics.jsonl", "checkpoint.safetensors", "curves.svg", "model.safetensors", "probes.jsonl"];

/** config.json: everything a run needs to be continued, and where it ran. */
export interface RunSettings {
  model: string;
  /** Width multiplier (absent in runs written before the flag existed: they were 1). */
  width?: number;
  dataset: string;
  data?: string;
  init?: string;
  saveEvery: number;
  /** A rates record beside each step record (absent in runs from before the flag: off). */
  logRates?: boolean;
  /** --deterministic as given (absent: not given, the probe chose; in runs from before the flag: plain). */
  deterministic?: boolean;
  /** The CPU kernel build the run trained on (absent in runs from before it was recorded: see deterministic). */
  kernels?: CpuKernels;
  /** How the engine rounded relaxed_madd when the run started (the start-up probe, src/backend/cpu/madd_probe.ts). */
  relaxedMadd?: MaddRounding;
  /** The CPU's 3×3 convolution algorithm (--conv-algorithm; absent in runs from before auto became the default, which recorded only a choice other than direct: direct). */
  convAlgorithm?: ConvAlgorithm;
  /** ZCA whitening in place of every BatchNorm (--norm zca; absent: BatchNorm). */
  zca?: { backward: "power-iteration" | "analytic" };
  /** Draws fused into every weight by the Bayesian initialisation (--bayes-init; absent: off). */
  bayesInit?: number;
  /** Noise after every BatchNorm (--noisy-bn; absent: none). */
  noisyBatchNorm?: boolean;
  /** The probes to run (--probe; absent: none). */
  probes?: ProbeSettings;
  train: TrainConfig;
  runtime: string;
  version: string;
  backend: string;
  /** The recomputation plan under --memory-budget (a resumed run trains through it again). */
  memory?: MemorySettings;
}

type Log = { write(s: string): void };

async function cleanTemporaries(dir: string, log: Log): Promise<void> {
  const removed = await removeStaleTemporaries(dir);
  if (removed.length > 0) log.write(`removed ${removed.length} temporary file(s) of interrupted writes: ${removed.join(", ")}\n`);
}

/** Make `dir` ready for a new run: created and writable, and empty unless `overwrite` (then its run files go). */
export async function openNewRun(dir: string, overwrite: boolean, log: Log): Promise<void> {
  await makeDirectory(dir, "--out");
  await cleanTemporaries(dir, log);
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  if (!overwrite) {
    const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? `, … (${entries.length} entries)` : "");
    throw new UsageError(
      `--out ${dir}: the directory is not empty (${shown}); continue that run with --resume ${dir}, ` +
        "choose another --out, or pass --overwrite to replace its run files",
    );
  }
  for (const name of RUN_FILES.filter((f) => entries.includes(f))) {
    await unlink(join(dir, name)).catch((error) => {
      throw new FileError(`--overwrite: cannot remove ${join(dir, name)}: ${(error as Error).message}`);
    });
  }
  log.write(`--overwrite: replaced the run files in ${dir}\n`);
}

/** config.json's text, checked field by field (`source` names the file in errors). */
export function readRunSettings(text: string, source: string): RunSettings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  const f = Fields.of(raw, source);
  const optionalString = (name: string) => (f.has(name) ? f.string(name) : undefined);
  return {
    model: f.string("model", MODEL_NAMES), width: f.has("width") ? f.number("width", { min: Number.MIN_VALUE }) : undefined,
    dataset: f.string("dataset", DATASET_NAMES),
    data: optionalString("data"), init: optionalString("init"), saveEvery: f.int("saveEvery", 1),
    ...(f.has("logRates") ? { logRates: f.boolean("logRates") } : {}),
    deterministic: f.has("deterministic") ? f.boolean("deterministic") : undefined,
    ...(f.has("kernels") ? { kernels: f.string("kernels", ["plain", "relaxed"]) as CpuKernels } : {}),
    ...(f.has("relaxedMadd") ? { relaxedMadd: f.string("relaxedMadd", MADD_ROUNDINGS) as MaddRounding } : {}),
    ...(f.has("convAlgorithm") ? { convAlgorithm: f.string("convAlgorithm", CONV_ALGORITHMS) as ConvAlgorithm } : {}),
    noisyBatchNorm: f.has("noisyBatchNorm") ? f.boolean("noisyBatchNorm") : undefined,
    ...(f.has("bayesInit") ? { bayesInit: f.int("bayesInit", 1) } : {}),
    ...(f.has("zca") ? { zca: { backward: f.object("zca").string("backward", ["power-iteration", "analytic"]) as "power-iteration" | "analytic" } } : {}),
    probes: f.has("probes") ? readProbeSettings(f.object("probes")) : undefined,
    train: readTrainConfig(f.object("train")), runtime: f.string("runtime"), version: f.string("version"),
    backend: f.string("backend", ["cpu", "auto", "webgpu"]),
    memory: f.has("memory") ? readMemorySettings(f.object("memory")) : undefined,
  };
}

/** Open a run directory to resume: its settings (config.json, checked) and its checkpoint's bytes. */
export async function openRunToResume(dir: string, log: Log): Promise<{ settings: RunSettings; checkpoint: Uint8Array }> {
  const configPath = join(dir, "config.json");
  if (!(await nodeFs.exists(configPath))) throw new UsageError(`--resume ${dir}: no config.json there (is it a retrograd run directory?)`);
  const text = await readBytes(configPath, "--resume");
  const settings = readRunSettings(new TextDecoder().decode(text), configPath);
  await cleanTemporaries(dir, log);
  const checkpointPath = join(dir, "checkpoint.safetensors");
  const entries = await readdir(dir);
  if (!entries.includes("checkpoint.safetensors")) {
    throw new CheckpointError(
      `--resume ${dir}: no checkpoint.safetensors: the run stopped before its first checkpoint (one is written at every ` +
        `epoch end and on Ctrl-C or SIGTERM), so there is nothing to resume; start it again with --out ${dir} --overwrite`,
    );
  }
  return { settings, checkpoint: await readBytes(checkpointPath, "--resume") };
}

/**
 * The records of a metrics log with their lines: a line that is not a JSON object (a write a
 * crash cut short) is skipped, and `log` says so. A missing log is empty.
 */
export async function readMetricsLog(path: string, log: Log): Promise<{ line: string; record: Record<string, unknown> }[]> {
  let text: string;
  try {
    text = new TextDecoder().decode(await readBytes(path));
  } catch (error) {
    if (error instanceof FileError && /ENOENT/.test(error.message)) return [];
    throw error;
  }
  const out: { line: string; record: Record<string, unknown> }[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let record: unknown;
    try {
      record = parseRecord(line);
    } catch {
      // Not an object: below.
    }
    if (typeof record === "object" && record !== null && !Array.isArray(record)) out.push({ line, record: record as Record<string, unknown> });
    else log.write(`warning: ${path}: line ${i + 1} is not a complete record (a write cut short by a crash?); skipped\n`);
  });
  return out;
}

/**
 * Keep only the records of a run's log (metrics.jsonl, probes.jsonl) up to `step`: what a
 * resumed run does with the lines written after its checkpoint, which it will write again.
 */
export async function trimLog(path: string, step: number, log: { write(s: string): void }): Promise<void> {
  const records = await readMetricsLog(path, log);
  const keep = records.filter(({ record }) => typeof record.step === "number" && record.step <= step).map(({ line }) => line);
  await writeAtomic(path, keep.length ? keep.join("\n") + "\n" : "");
}
