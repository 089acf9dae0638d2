/**
 * safetensors ⇄ tensors: the road for weights to and from PyTorch. Integer entries (such as
 * BatchNorm's num_batches_tracked) become float32 tensors tagged int64, and are written
 * back as I64, so a state dict survives a round trip through retrograd byte for byte.
 */
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from "./safetensors.ts";
import { tensor, type Tensor } from "../tensor.ts";

const INTEGER_DTYPES = new Set(["I64", "I32", "I16", "I8", "U8", "BOOL"]);

/** Parse safetensors bytes into a state dict (name → CPU tensor), in file order. */
export function readSafetensors(bytes: Uint8Array, source?: string): Map<string, Tensor> {
  const { tensors } = parseSafetensors(bytes, source);
  const out = new Map<string, Tensor>();
  for (const [name, raw] of tensors) {
    const t = tensor(raw.data, raw.shape);
    if (INTEGER_DTYPES.has(raw.dtype)) t.dtype = "int64";
    out.set(name, t);
  }
  return out;
}

/** Read the `__metadata__` strings of a safetensors file. */
export function readSafetensorsMetadata(bytes: Uint8Array, source?: string): Record<string, string> {
  return parseSafetensors(bytes, source).metadata;
}

/** Serialize a state dict (name → tensor) to safetensors bytes PyTorch can load. */
export function writeSafetensors(
  state: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>,
): Uint8Array {
  const entries = state instanceof Map ? [...state] : Object.entries(state);
  const toWrite = new Map<string, TensorToWrite>();
  for (const [name, t] of entries) {
    toWrite.set(name, { dtype: t.dtype === "int64" ? "I64" : "F32", shape: [...t.shape], data: t.dataSync() });
  }
  return serializeSafetensors(toWrite, metadata);
}
