/**
 * Rebuilding a trained model from what a run left: the architecture its config.json records
 * (model, width, noise after BatchNorm, ZCA whitening in BatchNorm's place), shared by train
 * (new and resumed runs), eval and analyze, so that a run directory alone rebuilds the model it
 * trained; and loading saved weights into it. Weights of the other normalisation (a ZCA layer's
 * `running_cov` where the model has BatchNorm's `running_var`, or the reverse) are a
 * StateDictError that names the file and the keys, and says how to rebuild the model that fits.
 */
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { UsageError } from "./flags.ts";
import { nodeFs, readBytes } from "./files.ts";
import { readRunSettings, type RunSettings } from "./run_dir.ts";

/** What of a run's settings fixes its model's architecture. */
export type Architecture = Pick<RunSettings, "model" | "width" | "noisyBatchNorm" | "zca">;

/** The model `arch` describes for images of this shape; --noisy-bn or --norm zca on a model without BatchNorm is a UsageError naming the flag. */
export function createModelOrExplain(arch: Architecture, images: { channels: number; classes: number; height: number }): rg.nn.Module {
  try {
    return rg.models.createModel(arch.model, {
      inChannels: images.channels, numClasses: images.classes, imageSize: images.height, widthMultiplier: arch.width ?? 1,
      noisyBatchNorm: arch.noisyBatchNorm ?? false, ...(arch.zca ? { zca: arch.zca } : {}),
    });
  } catch (error) {
    if (arch.noisyBatchNorm && error instanceof rg.ValueError) throw new UsageError(`--noisy-bn: ${arch.model}: ${error.message}`);
    if (arch.zca && error instanceof rg.ValueError) throw new UsageError(`--norm zca: ${error.message}`);
    throw error;
  }
}

/** The settings in run directory `dir`'s config.json, checked (a CheckpointError names a bad field). */
export async function readRunDirectory(dir: string, command: string): Promise<RunSettings> {
  const configPath = join(dir, "config.json");
  if (!(await nodeFs.exists(configPath))) {
    throw new UsageError(`${command} ${dir}: no config.json there (is it a retrograd run directory? else pass --model and --weights)`);
  }
  return readRunSettings(new TextDecoder().decode(await readBytes(configPath, command)), configPath);
}

/** The finished model of run directory `dir` (its model.safetensors); a UsageError when the run has not written it. */
export async function runWeights(dir: string, command: string): Promise<string> {
  const weights = join(dir, "model.safetensors");
  if (!(await nodeFs.exists(weights))) throw new UsageError(`${command}: ${dir} has no model.safetensors (is the run finished?); pass --weights`);
  return weights;
}

/**
 * Load the safetensors state dict `bytes` (from `source`) into `model`, strictly. When its
 * keys are those of the other normalisation, the StateDictError says so and adds
 * `rebuild(norm)`: how this command rebuilds a model with the weights' normalisation.
 */
export function loadWeights(model: rg.nn.Module, bytes: Uint8Array, source: string, rebuild: (norm: "bn" | "zca") => string): void {
  try {
    model.loadStateDict(rg.io.readSafetensors(bytes, source));
  } catch (error) {
    if (!(error instanceof rg.StateDictError)) throw error;
    const held = (suffix: string) => error.unexpected.find((k) => k.endsWith(suffix));
    const zcaKey = held(".running_cov"), batchNormKey = held(".running_var");
    // The other normalisation's keys make the full list long: what to do comes first.
    const hint = zcaKey
      ? `it holds ZCA whitening statistics (${zcaKey}) where this model has BatchNorm: ${rebuild("zca")}. `
      : batchNormKey && !error.missing.some((k) => k.endsWith(".running_var"))
      ? `it holds BatchNorm statistics (${batchNormKey}) where this model has ZCA whitening: ${rebuild("bn")}. `
      : "";
    throw new rg.StateDictError(`${source}: ${hint}${error.message}`, error.missing, error.unexpected, error.mismatched);
  }
}
