/**
 * `retrograd train`: train a model on a dataset with SGD, showing progress, writing
 * config.json, metrics.jsonl, checkpoint.safetensors (atomically, every epoch and on
 * SIGINT/SIGTERM) and curves.svg to --out (run_dir.ts: a new run needs an empty one), and
 * resuming from --resume DIR exactly where it stopped, with that run's own settings. A
 * diverging run stops with its last checkpoint intact. With no flags: ResNet-20 on
 * Fashion-MNIST, the product's main job.
 */
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { MODEL_NAMES } from "../src/nn/models/index.ts";
import { DEFAULT_CONV_ALGORITHM } from "../src/backend/cpu/conv_algorithm.ts";
import { Trainer, type EpochRecord, type TrainConfig } from "../src/train/index.ts";
import { type Flag, type FlagValues, UsageError } from "./flags.ts";
import { append, readBytes, writeAtomic } from "./files.ts";
import { openNewRun, openRunToResume, type RunSettings, trimLog } from "./run_dir.ts";
import { StopSignals } from "./signals.ts";
import { DATASET_NAMES, loadData } from "./datasets.ts";
import { finalTable, Progress } from "./progress.ts";
import { selectBackend } from "./backend.ts";
import { VERSION, runtimeName } from "./runtime.ts";
import { PROBE_FLAGS, PROBE_LOG, probeSettingsFrom, probeWriter } from "./probes.ts";
import { OPTIMIZER_FLAGS, OptimizerOutputs, optimizerSettingsFrom } from "./optimizer_flags.ts";
import { MEMORY_FLAGS, setUpMemoryPlan } from "./memory.ts";
import { createModelOrExplain, loadWeights } from "./saved_model.ts";

/** The model's width multiplier; `eval` takes it too, to rebuild the architecture of a run's weights. */
export const WIDTH_FLAG: Flag = {
  name: "width", type: "number", default: 1, min: 0, exclusiveMin: true,
  help: "width multiplier of the model's layers (1: the published architecture; 0.25: ResNet-20 with 4/8/16 channels)",
};

export const TRAIN_FLAGS: Flag[] = [
  { name: "model", type: "string", default: "resnet20", choices: MODEL_NAMES, help: "model to train" },
  WIDTH_FLAG,
  { name: "noisy-bn", type: "boolean", default: false, help: "add Santurkar et al.'s noise after every BatchNorm in training (models with BatchNorm)" },
  { name: "norm", type: "string", default: "bn", choices: ["bn", "zca"], help: "a ResNet's normalisation: bn (BatchNorm) or zca (ZCA whitening of groups of 4 channels in each BatchNorm's place)" },
  { name: "zca-backward", type: "string", default: "power-iteration", choices: ["power-iteration", "analytic"], help: "under --norm zca: the eigendecomposition's backward, power iteration (Wang et al.'s bounded gradient) or the analytic one" },
  { name: "dataset", type: "string", default: "fashion-mnist", choices: DATASET_NAMES, help: "dataset by name" },
  { name: "data", type: "string", default: undefined, help: "directory holding the dataset files (else the cache, then /usr/share/datasets/<name>)" },
  { name: "epochs", type: "int", default: 2, min: 1, help: "training epochs" },
  { name: "steps", type: "int", default: 0, min: 0, help: "stop after this many steps; the schedule then spans them (0: train for --epochs)" },
  { name: "batch-size", type: "int", default: 128, min: 1, help: "images per step" },
  { name: "lr", type: "number", default: 0.1, min: 0, exclusiveMin: true, help: "peak learning rate" },
  { name: "momentum", type: "number", default: 0.9, min: 0, max: 1, help: "momentum of sgd, lars and scale-amended" },
  { name: "nesterov", type: "boolean", default: true, help: "Nesterov momentum" },
  { name: "weight-decay", type: "number", default: 5e-4, min: 0, help: "weight decay (L2 in the gradient; decoupled for adamw)" },
  ...OPTIMIZER_FLAGS,
  { name: "schedule", type: "string", default: "cosine", choices: ["constant", "step", "cosine"], help: "learning-rate schedule (step: ÷10 at 50% and 75%)" },
  { name: "warmup", type: "number", default: 0.2, min: 0, help: "linear warm-up from lr/10, in epochs (at most a quarter of the run)" },
  { name: "powergrad", type: "number", default: 1, min: 0, exclusiveMin: true, max: 1, help: "PowerGrad α for the logit gradient (1: plain cross-entropy)" },
  { name: "label-smoothing", type: "number", default: 0, min: 0, max: 1, help: "label smoothing ε" },
  { name: "dither", type: "number", default: 0, min: 0, help: "dithered backprop: quantise each Conv2d/Linear output gradient with non-subtractive dither of step Δ = this factor × the gradient's spread (--dither-rule); sparsity per layer in metrics.jsonl (0: off)" },
  { name: "dither-rule", type: "string", default: "std", choices: ["std", "maxabs"], help: "the spread Δ follows under --dither: std (the gradient's standard deviation) or maxabs (its largest magnitude)" },
  { name: "seed", type: "int", default: 0, min: 0, max: 0xffffffff, help: "seed of every random draw" },
  { name: "shuffle", type: "boolean", default: true, help: "shuffle the training set each epoch" },
  { name: "augment", type: "string", default: "none", choices: ["none", "standard"], help: "standard: random crop (padding size/8) and horizontal flip; pays off in longer runs" },
  { name: "backend", type: "string", default: undefined, choices: ["cpu", "auto", "webgpu"], help: "compute backend (auto: a real GPU adapter if any, else cpu; default cpu, or the resumed run's)" },
  { name: "threads", type: "int", default: undefined, min: 1, max: 256, help: "CPU threads (default: every core); results are bit-identical for any count" },
  { name: "deterministic", type: "boolean", default: undefined, help: "force the CPU kernel build: on = plain SIMD128, the same bits on every runtime and machine; off = relaxed SIMD wherever supported. Default: relaxed where the start-up probe finds relaxed_madd fused (the same bits on every runtime and machine that fuses), else plain. Either gives the same bits for any thread count; the build used is recorded in config.json" },
  { name: "conv-algorithm", type: "string", default: DEFAULT_CONV_ALGORITHM, choices: [...rg.CONV_ALGORITHMS], help: "CPU 3×3 stride-1 convolutions: auto (the default: Winograd F(2×2,3×3) for the layer shapes where it measured faster, the direct kernels elsewhere), direct (the direct kernels everywhere, as runs before auto was the default) or winograd (wherever it applies); each gives the same bits for any thread count, but not the same bits as another; recorded in config.json, kept on --resume" },
  { name: "init", type: "string", default: undefined, help: "initial weights: a safetensors state dict with PyTorch names" },
  { name: "bayes-init", type: "int", default: 0, min: 0, help: "Bayesian (Kalman) initialisation: every Linear and Conv2d weight is the Bayes fusion of this many random U(±1/√fan_in) draws (Murru & Rossini, in the form docs/variants.md states; 0: off)" },
  { name: "out", type: "string", default: undefined, help: "output directory (default runs/<model>-<dataset>-<seed>)" },
  { name: "resume", type: "string", default: undefined, help: "continue the run in this directory from its checkpoint, with its own settings (only --backend, --threads, --json and --data may be given too)" },
  { name: "overwrite", type: "boolean", default: false, help: "start this run in a non-empty --out, replacing the run files there (else refused)" },
  { name: "save-every", type: "int", default: 50, min: 1, help: "write a step record to metrics.jsonl every N steps" },
  { name: "on-nonfinite", type: "string", default: "stop", choices: ["stop", "skip"], help: "a step whose loss or gradient norm is NaN or infinite: stop (exit 1, the last checkpoint kept, no model written) or skip its update (counted in metrics)" },
  { name: "json", type: "boolean", default: false, help: "print a machine-readable summary on stdout (progress goes to stderr)" },
  ...MEMORY_FLAGS,
  ...PROBE_FLAGS,
];

function configFrom(flags: FlagValues, mean: number[], std: number[]): TrainConfig {
  return {
    epochs: flags.epochs as number,
    steps: flags.steps as number,
    batchSize: flags["batch-size"] as number,
    lr: flags.lr as number,
    momentum: flags.momentum as number,
    nesterov: flags.nesterov as boolean,
    weightDecay: flags["weight-decay"] as number,
    schedule: flags.schedule as TrainConfig["schedule"],
    warmup: flags.warmup as number,
    powerGrad: flags.powergrad as number,
    labelSmoothing: flags["label-smoothing"] as number,
    seed: flags.seed as number,
    shuffle: flags.shuffle as boolean,
    augment: flags.augment as TrainConfig["augment"],
    mean, std,
    evalBatchSize: 500,
    optimizer: optimizerSettingsFrom(flags),
    onNonFinite: flags["on-nonfinite"] as TrainConfig["onNonFinite"],
    ...((flags.dither as number) > 0 ? { dither: { rule: flags["dither-rule"] as "std" | "maxabs", factor: flags.dither as number } } : {}),
  };
}

/** Flags a resumed run may take: where and how it computes, not what it computes. */
const RESUME_FLAGS = ["resume", "backend", "threads", "json", "data"];

/**
 * Put the CPU kernels in place and record them in `settings` (config.json). A new run takes
 * --deterministic's build, or without it the probe's default ("auto"). A resumed run keeps the
 * build it trained on (runs written before it was recorded: plain unless --deterministic was
 * off), or it would not end bit-identical to an uninterrupted one; where that build or its
 * rounding is not to be had here, it says so.
 */
async function setKernels(settings: RunSettings, resumed: boolean, log: { write(s: string): void }): Promise<rg.CpuKernels> {
  const recorded = settings.kernels ?? (settings.deterministic === false ? "relaxed" : "plain");
  const choice = resumed ? recorded : settings.deterministic === undefined ? "auto" : settings.deterministic ? "plain" : "relaxed";
  const kernels = await rg.setCpuKernels(choice);
  const rounding = rg.relaxedMaddRounding();
  if (resumed && (kernels !== recorded || (kernels === "relaxed" && settings.relaxedMadd && rounding !== settings.relaxedMadd))) {
    log.write(
      `warning: this run trained on the ${recorded} kernels${settings.relaxedMadd ? ` (relaxed_madd ${settings.relaxedMadd})` : ""}; ` +
        `here it continues on the ${kernels} kernels (relaxed_madd ${rounding}), so its low bits will differ from an uninterrupted run's\n`,
    );
  }
  if (!resumed) Object.assign(settings, { kernels, relaxedMadd: rounding });
  return kernels;
}

export async function train(flags: FlagValues & { _given?: string[] }): Promise<number> {
  const log = flags.json ? process.stderr : process.stdout;
  const resumeDir = flags.resume as string | undefined;
  let settings: RunSettings;
  let outDir: string;
  let checkpointBytes: Uint8Array | undefined;
  if (resumeDir) {
    const refused = (flags._given ?? []).filter((f) => !RESUME_FLAGS.includes(f));
    if (refused.length > 0) {
      throw new UsageError(
        `--resume continues a run with the settings in its config.json; ${refused.map((f) => `--${f}`).join(", ")} cannot be given with it ` +
          `(it takes only ${RESUME_FLAGS.slice(1).map((f) => `--${f}`).join(", ")}). To change them, start a new run from its weights: ` +
          `--init ${join(resumeDir, "model.safetensors")} (or its checkpoint's model part) --out NEW_DIR`,
      );
    }
    outDir = resumeDir;
    ({ settings, checkpoint: checkpointBytes } = await openRunToResume(resumeDir, log));
    if (flags.data !== undefined) settings.data = flags.data as string; // the files may have moved
  } else {
    outDir = (flags.out as string | undefined) ?? join("runs", `${flags.model}-${flags.dataset}-seed${flags.seed}`);
    settings = {
      model: flags.model as string, width: flags.width as number, dataset: flags.dataset as string, data: flags.data as string | undefined,
      ...(flags["noisy-bn"] ? { noisyBatchNorm: true } : {}), probes: probeSettingsFrom(flags),
      ...((flags["bayes-init"] as number) > 0 ? { bayesInit: flags["bayes-init"] as number } : {}),
      ...(flags.norm === "zca" ? { zca: { backward: flags["zca-backward"] as "power-iteration" | "analytic" } } : {}),
      init: flags.init as string | undefined, saveEvery: flags["save-every"] as number, logRates: flags["log-rates"] as boolean,
      deterministic: flags.deterministic as boolean | undefined,
      convAlgorithm: flags["conv-algorithm"] as rg.ConvAlgorithm,
      train: configFrom(flags, [], []), runtime: runtimeName(), version: VERSION, backend: (flags.backend as string | undefined) ?? "cpu",
    };
    if (settings.bayesInit && settings.init) throw new UsageError("--bayes-init and --init both set the initial weights; give one of them");
    // Checked before the data is loaded: a bad --out or --init should not cost a minute first.
    await openNewRun(outDir, flags.overwrite as boolean, log);
  }
  const initBytes = settings.init && !resumeDir ? await readBytes(settings.init, "--init") : undefined;

  // On --resume, an explicit --backend wins (e.g. continuing on the CPU after a GPU failure).
  const backend = await selectBackend((flags.backend as string | undefined) ?? settings.backend);
  const threads = backend === "cpu" ? await rg.setThreads(flags.threads as number | undefined) : 1;
  const kernels = await setKernels(settings, Boolean(resumeDir), log);
  // runs from before it was recorded trained on the direct kernels
  rg.setConvAlgorithm(settings.convAlgorithm ?? "direct");
  const data = await loadData(settings.dataset, settings.data, settings.train.seed);
  settings.train.mean = data.mean;
  settings.train.std = data.std;
  log.write(`retrograd ${VERSION} (${runtimeName()}, ${backend} backend, ${threads} thread${threads > 1 ? "s" : ""}${backend === "cpu" ? `, ${kernels} kernels` : ""}${backend === "cpu" ? `, ${rg.getConvAlgorithm()} convolutions` : ""}): ${settings.model}${(settings.width ?? 1) === 1 ? "" : ` (width ${settings.width})`} on ${settings.dataset} ` +
    `(${data.train.n} train / ${data.test.n} test images, ${data.train.channels}×${data.train.height}×${data.train.width}), output ${outDir}\n`);

  rg.manualSeed(settings.train.seed);
  const model = createModelOrExplain(settings, data.train);
  if (initBytes) loadWeights(model, initBytes, settings.init!, (norm) => `train with --norm ${norm} to start from them`);
  // A resumed run's weights come from its checkpoint, with the random stream where it was.
  if (settings.bayesInit && !resumeDir) rg.nn.bayesianInit(model, { draws: settings.bayesInit });
  const memory = setUpMemoryPlan(model, resumeDir ? {} : flags, settings.memory, data.train, settings.train, log);
  if (memory) settings.memory = memory.settings;
  const probe = settings.probes && probeWriter(settings.probes, outDir, model);
  const trainer = new Trainer(memory?.model ?? model, data.train, data.test, settings.train);
  const optimizerOutputs = new OptimizerOutputs(model, trainer.optimizer, settings.logRates ?? false);
  const checkpointPath = join(outDir, "checkpoint.safetensors");
  const metricsPath = join(outDir, "metrics.jsonl");

  if (checkpointBytes) {
    const saved = trainer.resume(checkpointBytes, checkpointPath);
    const differing = (Object.keys({ ...saved, ...settings.train }) as (keyof TrainConfig)[])
      .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(settings.train[k]))
      .map((k) => `${k} ${JSON.stringify(saved[k])} there, ${JSON.stringify(settings.train[k])} in config.json`);
    if (differing.length > 0) {
      throw new rg.CheckpointError(`${checkpointPath} was written by a run with other settings than ${join(outDir, "config.json")}: ${differing.join("; ")}`);
    }
    // Drop records written after the checkpoint, so the logs equal an uninterrupted run's.
    await trimLog(metricsPath, trainer.step, log);
    if (settings.probes) await trimLog(join(outDir, PROBE_LOG), trainer.step, log);
    log.write(`resumed at step ${trainer.step} (${trainer.history.length} epochs done)\n`);
  } else {
    await writeAtomic(join(outDir, "config.json"), JSON.stringify(settings, null, 2) + "\n");
    await writeAtomic(metricsPath, "");
    if (settings.probes) await writeAtomic(join(outDir, PROBE_LOG), "");
  }

  const signals = new StopSignals(log);
  // With --steps the run's length in epochs is what the step budget spans, not --epochs.
  const epochs = settings.train.steps > 0 ? Math.ceil(settings.train.steps / trainer.loader.numBatches) : settings.train.epochs;
  const progress = new Progress(log, epochs, false, settings.train.steps);
  const saveCurves = (history: readonly EpochRecord[]) =>
    writeAtomic(join(outDir, "curves.svg"), rg.io.renderCurves([{ name: `${settings.model} ${settings.dataset}`, history }]));
  // A GPU failure (device lost, out of memory) ends the run; say how to go on without the GPU.
  let checkpointed = Boolean(resumeDir);
  const saveCheckpoint = async (checkpoint: () => Promise<Uint8Array>) => {
    await writeAtomic(checkpointPath, await checkpoint());
    checkpointed = true;
  };
  const runOrExplain = async (...args: Parameters<Trainer["run"]>) => {
    try {
      return await trainer.run(...args);
    } catch (error) {
      if (error instanceof rg.DivergenceError) {
        await append(metricsPath, rg.io.stringifyRecord({ type: "diverged", step: error.step, epoch: error.epoch, lastFiniteLoss: error.lastFiniteLoss }) + "\n");
        throw new rg.DivergenceError(`${error.message}.\n` + (checkpointed
          ? `The last checkpoint (${checkpointPath}) is as it was; no model was written.`
          : "No checkpoint was written yet, and no model.") +
          " Lower --lr, or pass --on-nonfinite skip to skip such steps.", error.step, error.epoch, error.lastFiniteLoss);
      }
      // The GPU's out-of-memory error is the class every backend raises, no longer a WebGPUError.
      if (error instanceof rg.WebGPUError || (error instanceof rg.OutOfMemoryError && backend !== "cpu")) {
        throw new rg.RetrogradError(`${error.message}\n` + (checkpointed
          ? `The last checkpoint (${checkpointPath}) is intact; continue on the CPU with: retrograd train --resume ${outDir} --backend cpu`
          : "No checkpoint was written yet (one is written at every epoch end); start the run again with --backend cpu"));
      }
      throw error;
    }
  };
  const result = await runOrExplain({
    onStep: async (r) => {
      memory?.afterStep();
      progress.step(r);
      if (r.step % settings.saveEvery !== 0) return;
      const rates = await optimizerOutputs.ratesRecord(r);
      await append(metricsPath, rg.io.stringifyRecord({ ...r, ...memory?.recordFields() }) + "\n" + (rates ? rates + "\n" : ""));
    },
    onEpoch: async (r, checkpoint) => {
      memory?.afterEpoch();
      progress.epoch(r);
      const ema = await optimizerOutputs.emaRecord(r, data.test, settings.train);
      await append(metricsPath, rg.io.stringifyRecord(r) + "\n" + (ema ? ema + "\n" : ""));
      await saveCheckpoint(checkpoint);
      await saveCurves(trainer.history);
    },
    probe,
    shouldStop: () => signals.requested,
    onInterrupt: async (checkpoint) => {
      await saveCheckpoint(checkpoint);
      log.write(`checkpoint saved to ${checkpointPath}; continue with: retrograd train --resume ${outDir}\n`);
    },
  });
  signals.dispose();

  if (!result.interrupted) {
    await writeAtomic(join(outDir, "model.safetensors"), await rg.io.writeSafetensorsAsync(model.stateDict()));
    const emaWeights = await optimizerOutputs.emaWeights();
    if (emaWeights) await writeAtomic(join(outDir, "model_ema.safetensors"), emaWeights);
    log.write("\n" + finalTable(result.history));
  }
  if (memory) {
    log.write(`memory: measured peak ${(memory.measuredPeakBytes / 2 ** 20).toFixed(1)} MiB per step, predicted ${(memory.settings.plan.predictedPeakBytes / 2 ** 20).toFixed(1)} MiB, budget ${memory.settings.budgetMiB} MiB\n`);
  }
  const last = result.history[result.history.length - 1];
  const skippedSteps = result.history.reduce((n, r) => n + r.skippedSteps, 0);
  if (skippedSteps > 0) log.write(`${skippedSteps} steps skipped: their loss or gradient norm was not finite (--on-nonfinite skip)\n`);
  if (flags.json) {
    process.stdout.write(rg.io.stringifyRecord({
      out: outDir, interrupted: result.interrupted, steps: trainer.step, epochs: result.history.length, skippedSteps,
      testAccuracy: last?.testAccuracy ?? null, testLoss: last?.testLoss ?? null, history: result.history,
      ...(memory ? { memory: { predictedPeakBytes: memory.settings.plan.predictedPeakBytes, measuredPeakBytes: memory.measuredPeakBytes } } : {}),
    }) + "\n");
  } else if (last && !result.interrupted) { // an interrupted run has no model.safetensors yet
    log.write(`test accuracy ${(100 * last.testAccuracy).toFixed(2)}% after ${trainer.step} steps; weights in ${join(outDir, "model.safetensors")}\n`);
  }
  return result.interrupted ? signals.exitCode : 0;
}

