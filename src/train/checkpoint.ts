/**
 * Checkpoints as one safetensors file: the model's state dict under `model.`, the optimiser's
 * state under `optim.`, and the training position (epoch, step, the random
 * generator's state at the epoch start and now, the metrics so far) as JSON metadata. Plain
 * safetensors, so the model part loads in PyTorch too (strip the prefix). Runtime-free:
 * this makes and reads bytes; the CLI writes them atomically.
 */
import type { Module } from "../nn/module.ts";
import type { Optimizer } from "../optim/optimizer.ts";
import type { Tensor } from "../tensor.ts";
import { readSafetensors, readSafetensorsMetadata, writeSafetensorsAsync } from "../io/state.ts";
import { CheckpointError } from "../errors.ts";
import { parseRecord, stringifyRecord } from "../io/records.ts";
import { describeValue } from "../io/describe.ts";
import { Fields } from "../io/fields.ts";
import { readPosition } from "./validate.ts";
import type { TrainingPosition } from "./records.ts";

export interface CheckpointContents<M> {
  position: TrainingPosition;
  /** Everything the caller wants back (config, metrics so far), JSON-serialisable. */
  extra: M;
}

export function encodeCheckpoint<M>(model: Module, optimizer: Optimizer, contents: CheckpointContents<M>): Promise<Uint8Array> {
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of model.stateDict()) tensors.set(`model.${name}`, t);
  for (const [name, t] of optimizer.stateDict()) tensors.set(`optim.${name}`, t);
  return writeSafetensorsAsync(tensors, {
    format: "retrograd-checkpoint-v1",
    position: JSON.stringify(contents.position),
    extra: stringifyRecord(contents.extra),
  });
}

/**
 * Restore model and optimiser in place; returns the position and the extra data as `check`
 * makes it. The metadata is parsed and checked first (the position here, the extra data by
 * `check`, which throws on what it cannot trust), so a malformed checkpoint loads nothing.
 */
export function decodeCheckpoint<M>(
  bytes: Uint8Array, source: string, model: Module, optimizer: Optimizer,
  check: (position: TrainingPosition, extra: unknown) => M,
): CheckpointContents<M> {
  const meta = readSafetensorsMetadata(bytes, source);
  if (meta.format !== "retrograd-checkpoint-v1") {
    throw new CheckpointError(`${source}: not a retrograd checkpoint (metadata format is ${describeValue(meta.format)})`);
  }
  const json = (key: string, parse: (text: string) => unknown) => {
    if (typeof meta[key] !== "string") throw new CheckpointError(`${source}: the metadata has no "${key}"`);
    try {
      return parse(meta[key]);
    } catch (error) {
      throw new CheckpointError(`${source}: the metadata's "${key}" is not valid JSON (${(error as Error).message})`);
    }
  };
  const position = readPosition(Fields.of(json("position", JSON.parse), source, "position."));
  const extra = check(position, json("extra", parseRecord));
  const tensors = readSafetensors(bytes, source);
  const part = (prefix: string) =>
    new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, t]) => [k.slice(prefix.length), t]));
  try {
    model.loadStateDict(part("model."));
    optimizer.loadStateDict(part("optim."));
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { position, extra };
}
