/**
 * safetensors ⇄ tensors: the road for weights to and from PyTorch. Integer entries (such as
 * BatchNorm's num_batches_tracked) become float32 tensors tagged int64, and are written
 * back as I64, so a state dict survives a round trip through retrograd byte for byte.
 */
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "./safetensors.ts";
import { tensor, type Tensor } from "../tensor.ts";
import { getBackend } from "../backend/registry.ts";

const INTEGER_DTYPES = new Set(["I64", "I32", "I16", "I8", "U8", "BOOL"]);

/** Parse safetensors bytes into a state dict (name → CPU tensor), in file order. */
export function readSafetensors(bytes: Uint8Array, source?: string): Map<string, Tensor> {
  const { tensors } = parseSafetensors(bytes, source);
  const out = new Map<string, Tensor>();
  for (const [name, raw] of tensors) {
    const t = tensor(raw.data, raw.shape, getBackend("cpu")); // host-readable, whatever the default
    if (INTEGER_DTYPES.has(raw.dtype)) t.dtype = "int64";
    out.set(name, t);
  }
  return out;
}

/** Read the `__metadata__` strings of a safetensors file. */
export function readSafetensorsMetadata(bytes: Uint8Array, source?: string): Record<string, string> {
  return parseSafetensors(bytes, source).metadata;
}

type StateLike = Map<string, Tensor> | Record<string, Tensor>;

function entriesOf(state: StateLike): [string, Tensor][] {
  return state instanceof Map ? [...state] : Object.entries(state);
}

function toWrite(t: Tensor, data: Float32Array): TensorToWrite {
  return { dtype: t.dtype === "int64" ? "I64" : "F32", shape: [...t.shape], data };
}

/** Serialize a state dict (name → tensor) to safetensors bytes PyTorch can load (CPU tensors). */
export function writeSafetensors(state: StateLike, metadata?: Record<string, string>): Uint8Array {
  return serializeSafetensors(new Map(entriesOf(state).map(([name, t]) => [name, toWrite(t, t.dataSync())])), metadata);
}

/** The same for tensors on any backend: values are read back from the device first. */
export async function writeSafetensorsAsync(state: StateLike, metadata?: Record<string, string>): Promise<Uint8Array> {
  const entries = entriesOf(state);
  const values = await Promise.all(entries.map(([, t]) => t.data()));
  return serializeSafetensors(new Map(entries.map(([name, t], i) => [name, toWrite(t, values[i])])), metadata);
}
