/**
 * Reading and writing the safetensors format (https://github.com/huggingface/safetensors), the
 * way checkpoints travel between retrograd and PyTorch. A file is an 8-byte little-endian
 * header length N, N bytes of UTF-8 JSON describing each tensor (dtype, shape, byte range),
 * then one byte buffer holding all tensor data. Everything here is a pure function over
 * Uint8Array so it runs unchanged in Deno, Node and browsers; the caller does the file I/O.
 * The reader treats its input as hostile: every length and offset is checked against the
 * bytes actually present before anything is read or allocated, and every failure is a
 * SafetensorsError naming the source and the offending key or number.
 */

import { SafetensorsError } from "../errors.ts";
// Depth- and length-bounded: a hostile header may nest thousands deep.
import { describeValue as describe } from "./describe.ts";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** A tensor read from a file; `data` holds its values converted to float32. */
export interface RawTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface ParsedSafetensors {
  tensors: Map<string, RawTensor>;
  metadata: Record<string, string>;
}

/** A tensor to write. I64 tensors take their (integer) values from the float32 data. */
export interface TensorToWrite {
  dtype: "F32" | "I64";
  shape: number[];
  data: Float32Array;
}

const DEFAULT_SOURCE = "safetensors bytes";
const HEADER_LENGTH_BYTES = 8;
/** The official reader refuses headers above 100 MB; so do we, before allocating anything. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Typed arrays use host byte order; on little-endian hosts raw bytes can be copied as is. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isSupportedDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(BYTES_PER_ELEMENT, value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNonNegativeSafeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Element count of a shape. Huge shapes lose precision, but then they cannot match a real byte count anyway. */
function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}


// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

interface HeaderEntry {
  key: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a whole safetensors file. `source` (a file name, say) prefixes every error message.
 * Tensors come back in data-buffer order; all values are converted to float32.
 */
export function parseSafetensors(bytes: Uint8Array, source: string = DEFAULT_SOURCE): ParsedSafetensors {
  const fail = (message: string): never => {
    throw new SafetensorsError(`${source}: ${message}`);
  };

  if (bytes.length < HEADER_LENGTH_BYTES) {
    fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length field`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Read the u64 as two u32 halves: exact for every length we would accept, no BigInt needed.
  const headerLengthLow = view.getUint32(0, true);
  const headerLengthHigh = view.getUint32(4, true);
  const headerLength = headerLengthHigh * 2 ** 32 + headerLengthLow;
  if (headerLength > MAX_HEADER_BYTES) {
    const exact = (BigInt(headerLengthHigh) << 32n) | BigInt(headerLengthLow);
    fail(`header length ${exact} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const bufferStart = HEADER_LENGTH_BYTES + headerLength;
  if (bufferStart > bytes.length) {
    fail(
      `truncated: header length ${headerLength} needs at least ${bufferStart} bytes, ` +
        `but the file has only ${bytes.length}`,
    );
  }

  const header = decodeHeader(bytes.subarray(HEADER_LENGTH_BYTES, bufferStart), fail);
  const bufferLength = bytes.length - bufferStart;
  const metadata = readMetadata(header[METADATA_KEY], fail);
  const entries: HeaderEntry[] = [];
  for (const key of Object.keys(header)) {
    if (key === METADATA_KEY) continue;
    entries.push(readEntry(key, header[key], bufferLength, bytes.length, fail));
  }
  checkBufferCoverage(entries, bufferLength, fail);

  const tensors = new Map<string, RawTensor>();
  for (const entry of entries) {
    const data = decodeTensorData(bytes, view, bufferStart + entry.begin, entry, fail);
    tensors.set(entry.key, { dtype: entry.dtype, shape: entry.shape, data });
  }
  return { tensors, metadata };
}

function decodeHeader(headerBytes: Uint8Array, fail: (message: string) => never): Record<string, unknown> {
  let text: string;
  try {
    // fatal: reject invalid UTF-8 instead of silently substituting U+FFFD into tensor names.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail(`header (${headerBytes.length} bytes) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return fail(`header (${headerBytes.length} bytes) is not valid JSON: ${reason}`);
  }
  if (!isPlainObject(header)) {
    return fail(`header must be a JSON object, got ${describe(header)}`);
  }
  return header;
}

function readMetadata(raw: unknown, fail: (message: string) => never): Record<string, string> {
  const metadata: Record<string, string> = {};
  if (raw === undefined) return metadata;
  if (!isPlainObject(raw)) return fail(`"${METADATA_KEY}" must be an object of strings, got ${describe(raw)}`);
  for (const key of Object.keys(raw)) {
    const value = raw[key];
    if (typeof value !== "string") {
      fail(`"${METADATA_KEY}" value for "${key}" must be a string, got ${describe(value)}`);
    }
    // defineProperty, not assignment: a key named "__proto__" must stay an ordinary entry.
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return metadata;
}

function readEntry(
  key: string,
  raw: unknown,
  bufferLength: number,
  fileLength: number,
  fail: (message: string) => never,
): HeaderEntry {
  const where = `tensor "${key}"`;
  if (!isPlainObject(raw)) return fail(`${where}: header entry must be an object, got ${describe(raw)}`);
  for (const field of ["dtype", "shape", "data_offsets"]) {
    if (!(field in raw)) fail(`${where}: header entry is missing "${field}"`);
  }

  const dtype = raw.dtype;
  if (typeof dtype !== "string") return fail(`${where}: dtype must be a string, got ${describe(dtype)}`);
  if (!isSupportedDtype(dtype)) {
    return fail(
      `${where}: unsupported dtype "${dtype}" (supported: ${Object.keys(BYTES_PER_ELEMENT).join(", ")})`,
    );
  }

  const shape = raw.shape;
  if (!Array.isArray(shape)) return fail(`${where}: shape must be an array, got ${describe(shape)}`);
  for (const dim of shape) {
    if (!isNonNegativeSafeInteger(dim)) {
      fail(`${where}: shape ${describe(shape)} has dimension ${describe(dim)}, not a non-negative integer`);
    }
  }

  const offsets = raw.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !isNonNegativeSafeInteger(offsets[0]) || !isNonNegativeSafeInteger(offsets[1])
  ) {
    return fail(`${where}: data_offsets must be two non-negative integers, got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) return fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);

  const byteLength = end - begin;
  const expectedByteLength = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
  if (byteLength !== expectedByteLength) {
    fail(
      `${where}: data_offsets [${begin}, ${end}] span ${byteLength} bytes, but shape ` +
        `${describe(shape)} of dtype ${dtype} needs ${expectedByteLength} bytes`,
    );
  }
  if (end > bufferLength) {
    fail(
      `truncated: ${where} needs data bytes [${begin}, ${end}) but the data buffer holds only ` +
        `${bufferLength} bytes (file is ${fileLength} bytes, expected at least ${fileLength - bufferLength + end})`,
    );
  }
  return { key, dtype, shape: shape.slice() as number[], begin, end };
}

/**
 * The format requires the tensors to tile the data buffer exactly: no overlaps (two tensors
 * sharing bytes) and no holes or trailing bytes (room for hidden payloads). Sorts `entries`
 * into buffer order as a side effect.
 */
function checkBufferCoverage(entries: HeaderEntry[], bufferLength: number, fail: (message: string) => never): void {
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end || compareCodePoints(a.key, b.key));
  let covered = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of entries) {
    if (entry.begin < covered) {
      fail(
        `tensors "${previous!.key}" [${previous!.begin}, ${previous!.end}) and "${entry.key}" ` +
          `[${entry.begin}, ${entry.end}) overlap in the data buffer`,
      );
    }
    if (entry.begin > covered) {
      const after = previous ? `after tensor "${previous.key}"` : "at the start of the data buffer";
      fail(`hole of ${entry.begin - covered} bytes [${covered}, ${entry.begin}) ${after}, before tensor "${entry.key}"`);
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== bufferLength) {
    const after = previous ? `after tensor "${previous.key}"` : "with no tensors in the header";
    fail(`data buffer is ${bufferLength} bytes but the tensors cover only ${covered}: ${bufferLength - covered} trailing bytes ${after}`);
  }
}

function decodeTensorData(
  bytes: Uint8Array,
  view: DataView,
  start: number,
  entry: HeaderEntry,
  fail: (message: string) => never,
): Float32Array {
  const count = (entry.end - entry.begin) / BYTES_PER_ELEMENT[entry.dtype];
  const out = new Float32Array(count);
  switch (entry.dtype) {
    case "F32":
      if (HOST_IS_LITTLE_ENDIAN) {
        // Byte copy into a fresh (aligned) array: fast and indifferent to the source alignment.
        new Uint8Array(out.buffer).set(bytes.subarray(start, start + count * 4));
      } else {
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, true);
      }
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, true);
      break;
    case "F16":
      for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(start + 2 * i, true));
      break;
    case "BF16": {
      // bfloat16 is the top half of a float32, so widening the bits is exact (NaN payloads too).
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) outBits[i] = view.getUint16(start + 2 * i, true) << 16;
      break;
    }
    case "I64":
      for (let i = 0; i < count; i++) {
        const value = view.getBigInt64(start + 8 * i, true);
        if (value > 2n ** 53n || value < -(2n ** 53n)) {
          fail(`tensor "${entry.key}": I64 element ${i} is ${value}, beyond ±2^53 where numbers stop being exact`);
        }
        out[i] = Number(value);
      }
      break;
    case "I32":
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, true);
      break;
    case "I16":
      for (let i = 0; i < count; i++) out[i] = view.getInt16(start + 2 * i, true);
      break;
    case "I8":
      for (let i = 0; i < count; i++) out[i] = view.getInt8(start + i);
      break;
    case "U8":
      for (let i = 0; i < count; i++) out[i] = bytes[start + i]!;
      break;
    case "BOOL":
      // Any non-zero byte is true, as numpy and torch read it.
      for (let i = 0; i < count; i++) out[i] = bytes[start + i] === 0 ? 0 : 1;
      break;
  }
  return out;
}

/** Exact IEEE half-precision decode (every float16 value is representable in float32). */
function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** Order of the official writer's Dtype enum, by which it sorts (descending) before names. */
const WRITE_DTYPE_RANK: Record<TensorToWrite["dtype"], number> = { F32: 0, I64: 1 };

/** Compares by Unicode code point, i.e. UTF-8 byte order, as Rust's String ordering does. */
function compareCodePoints(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const l = left.next();
    const r = right.next();
    if (l.done || r.done) return (l.done ? 0 : 1) - (r.done ? 0 : 1);
    const difference = l.value.codePointAt(0)! - r.value.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
}

/**
 * Serializes tensors to safetensors bytes, byte-identical to the official writer
 * (`safetensors.serialize` / `save_file`): tensors ordered by descending dtype size (I64 before
 * F32, which keeps every tensor aligned to its element size without padding) then by name;
 * compact JSON header with "__metadata__" first (present only when `metadata` is given),
 * padded with spaces to a multiple of 8 bytes; data contiguous in the same order.
 */
export function serializeSafetensors(
  tensors: Iterable<[string, TensorToWrite]> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const fail = (message: string): never => {
    throw new SafetensorsError(`serializeSafetensors: ${message}`);
  };

  const seen = new Set<string>();
  const items: Array<[string, TensorToWrite]> = [];
  for (const [key, tensor] of tensors) {
    if (typeof key !== "string") fail(`tensor key ${describe(key)} is not a string`);
    if (key === METADATA_KEY) fail(`"${METADATA_KEY}" is reserved and cannot name a tensor`);
    if (seen.has(key)) fail(`tensor "${key}" appears twice`);
    seen.add(key);
    checkTensorToWrite(key, tensor, fail);
    items.push([key, tensor]);
  }
  items.sort(([keyA, a], [keyB, b]) => WRITE_DTYPE_RANK[b.dtype] - WRITE_DTYPE_RANK[a.dtype] || compareCodePoints(keyA, keyB));

  const headerParts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(`metadata must be an object of strings, got ${describe(metadata)}`);
    // Sorted so equal inputs give equal bytes (the official writer's order is a hash order).
    const metadataParts = Object.keys(metadata).sort(compareCodePoints).map((key) => {
      const value = metadata[key];
      if (typeof value !== "string") fail(`metadata value for "${key}" must be a string, got ${describe(value)}`);
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    headerParts.push(`${JSON.stringify(METADATA_KEY)}:{${metadataParts.join(",")}}`);
  }
  let offset = 0;
  for (const [key, tensor] of items) {
    const byteLength = tensor.data.length * BYTES_PER_ELEMENT[tensor.dtype];
    headerParts.push(
      `${JSON.stringify(key)}:{"dtype":"${tensor.dtype}","shape":[${tensor.shape.join(",")}],` +
        `"data_offsets":[${offset},${offset + byteLength}]}`,
    );
    offset += byteLength;
  }
  const headerJson = new TextEncoder().encode(`{${headerParts.join(",")}}`);
  const paddedHeaderLength = Math.ceil(headerJson.length / 8) * 8;
  const bufferStart = HEADER_LENGTH_BYTES + paddedHeaderLength;

  const out = new Uint8Array(bufferStart + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, paddedHeaderLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(paddedHeaderLength / 2 ** 32), true);
  out.set(headerJson, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + headerJson.length, bufferStart); // space padding

  let position = bufferStart;
  for (const [, tensor] of items) {
    const { data } = tensor;
    if (tensor.dtype === "F32") {
      if (HOST_IS_LITTLE_ENDIAN) {
        out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), position);
      } else {
        for (let i = 0; i < data.length; i++) view.setFloat32(position + 4 * i, data[i]!, true);
      }
      position += data.byteLength;
    } else {
      for (let i = 0; i < data.length; i++) view.setBigInt64(position + 8 * i, BigInt(data[i]!), true);
      position += data.length * 8;
    }
  }
  return out;
}

function checkTensorToWrite(key: string, tensor: TensorToWrite, fail: (message: string) => never): void {
  const where = `tensor "${key}"`;
  if (tensor.dtype !== "F32" && tensor.dtype !== "I64") {
    fail(`${where}: cannot write dtype ${describe(tensor.dtype)} (only F32 and I64)`);
  }
  if (!(tensor.data instanceof Float32Array)) fail(`${where}: data must be a Float32Array`);
  if (!Array.isArray(tensor.shape) || !tensor.shape.every(isNonNegativeSafeInteger)) {
    fail(`${where}: shape ${describe(tensor.shape)} must be non-negative integers`);
  }
  const expected = elementCount(tensor.shape);
  if (tensor.data.length !== expected) {
    fail(`${where}: shape ${describe(tensor.shape)} holds ${expected} elements but data has ${tensor.data.length}`);
  }
  if (tensor.dtype === "I64") {
    for (let i = 0; i < tensor.data.length; i++) {
      const value = tensor.data[i]!;
      // Float32 integers can reach 3.4e38; only those inside the int64 range can be written.
      if (!Number.isInteger(value) || value < -(2 ** 63) || value >= 2 ** 63) {
        fail(`${where}: I64 element ${i} is ${value}, not an integer in the int64 range`);
      }
    }
  }
}
