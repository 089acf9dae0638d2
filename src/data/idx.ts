/**
 * The IDX format of MNIST, Fashion-MNIST and KMNIST: a 4-byte magic (0x00 0x00, a type code,
 * the number of dimensions), one big-endian u32 per dimension, then the values. Only unsigned
 * bytes (type 0x08) occur in these datasets, so only that type is read. `readIdx` accepts the
 * file plain or gzipped; `idxDataset` pairs an images file [N, H, W] with a labels file [N].
 * Every check names the file, since a truncated download is the usual cause.
 */
import type { Dataset } from "./dataset.ts";
import { checkLabels } from "./dataset.ts";
import { DatasetError } from "./errors.ts";
import { gunzip, hexPrefix, isGzip } from "./gzip.ts";

/** One decoded IDX file. `data` is a view into the input bytes, not a copy. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;
const TYPE_NAMES: Record<number, string> = { 0x08: "ubyte", 0x09: "sbyte", 0x0b: "short", 0x0c: "int", 0x0d: "float", 0x0e: "double" };

interface IdxHeader {
  dims: number[];
  headerSize: number;
  /** Data bytes the dims declare. */
  count: number;
}

/**
 * The header of an IDX file from its first bytes: undefined while `bytes` is too short to
 * hold it (and `complete` is false); a DatasetError as soon as the bytes show a wrong magic.
 */
function readHeader(bytes: Uint8Array, source: string, complete: boolean): IdxHeader | undefined {
  if (bytes.length < 4) {
    if (!complete) return undefined;
    throw new DatasetError(`${source}: too short for an IDX file (${bytes.length} bytes; the header alone is at least 4)`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hint = isGzip(bytes) ? " (this is gzip data: use readIdx, which decompresses it)" : "";
    throw new DatasetError(`${source}: not an IDX file: magic starts with ${hexPrefix(bytes, 4)}, expected 00 00 08 <ndim>${hint}`);
  }
  const typeCode = bytes[2];
  if (typeCode !== UBYTE) {
    const typeName = TYPE_NAMES[typeCode] ?? "unknown";
    throw new DatasetError(
      `${source}: IDX type code 0x${typeCode.toString(16).padStart(2, "0")} (${typeName}) is not supported; only 0x08 (ubyte) is`,
    );
  }
  const ndim = bytes[3];
  const headerSize = 4 + 4 * ndim;
  if (bytes.length < headerSize) {
    if (!complete) return undefined;
    throw new DatasetError(`${source}: too short: the header declares ${ndim} dimensions (${headerSize} header bytes) but the file has ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  return { dims, headerSize, count };
}

/** Decode an uncompressed IDX file of unsigned bytes; `source` names it in errors. */
export function parseIdx(bytes: Uint8Array, source: string): IdxArray {
  const { dims, headerSize, count } = readHeader(bytes, source, true)!;
  const actual = bytes.length - headerSize;
  if (actual !== count) {
    const problem = actual < count ? "truncated" : "has trailing bytes";
    throw new DatasetError(
      `${source}: ${problem}: dims [${dims.join(", ")}] need ${count} data bytes after the ${headerSize}-byte header, but the file has ${actual}`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/**
 * Decode an IDX file that may be gzipped (decided by its magic bytes, not its name). Gzip
 * data inflates only as far as the IDX header (its first bytes out) declares.
 */
export async function readIdx(bytes: Uint8Array, source: string): Promise<IdxArray> {
  if (!isGzip(bytes)) return parseIdx(bytes, source);
  const declared = (head: Uint8Array) => {
    const header = readHeader(head, source, false);
    return header && { bytes: header.headerSize + header.count, what: `the ${header.headerSize + header.count} bytes its IDX header declares (dims [${header.dims.join(", ")}])` };
  };
  return parseIdx(await gunzip(bytes, source, { declared }), source);
}

/**
 * Pair an images file [N, H, W] with a labels file [N] into a one-channel, ten-class
 * Dataset. `source` names the pair in errors (e.g. the directory or the images file).
 */
export function idxDataset(images: IdxArray, labels: IdxArray, source: string, name?: string): Dataset {
  if (images.dims.length !== 3) {
    throw new DatasetError(`${source}: images must have 3 dimensions [N, height, width], got [${images.dims.join(", ")}]`);
  }
  if (labels.dims.length !== 1) {
    throw new DatasetError(`${source}: labels must have 1 dimension [N], got [${labels.dims.join(", ")}]`);
  }
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) {
    throw new DatasetError(`${source}: ${n} images but ${labels.dims[0]} labels`);
  }
  const classes = 10;
  const labelArray = Int32Array.from(labels.data);
  checkLabels(labelArray, classes, source);
  // Copy the pixels so the dataset does not pin the (possibly much larger) decompressed file buffer.
  return { images: images.data.slice(), labels: labelArray, n, channels: 1, height, width, classes, name };
}
