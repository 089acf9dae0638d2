/**
 * Tests for the safetensors reader/writer: round trips, decoding of every supported dtype from
 * hand-built files, byte-exact agreement with the official writer's layout, and a rejection
 * (SafetensorsError naming the culprit) for each kind of malformed input.
 */

import { test } from "uvu";
import * as assert from "uvu/assert";
import { SafetensorsError } from "../src/errors.ts";
import { parseSafetensors, serializeSafetensors } from "../src/io/safetensors.ts";

const encoder = new TextEncoder();

/** Builds a file from a header JSON string (padded with `padTo8` like the official writer) and data bytes. */
function buildFile(headerJson: string, data: ArrayLike<number> = [], options: { padTo8?: boolean } = {}): Uint8Array {
  let header = encoder.encode(headerJson);
  if (options.padTo8) {
    const padded = new Uint8Array(Math.ceil(header.length / 8) * 8).fill(0x20);
    padded.set(header);
    header = padded;
  }
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

function littleEndianBytes(kind: "f32" | "f64" | "i32" | "i64" | "u16", values: number[]): number[] {
  const size = { f32: 4, f64: 8, i32: 4, i64: 8, u16: 2 }[kind];
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((value, i) => {
    if (kind === "f32") view.setFloat32(i * size, value, true);
    else if (kind === "f64") view.setFloat64(i * size, value, true);
    else if (kind === "i32") view.setInt32(i * size, value, true);
    else if (kind === "i64") view.setBigInt64(i * size, BigInt(value), true);
    else view.setUint16(i * size, value, true);
  });
  return Array.from(new Uint8Array(view.buffer));
}

/** Asserts `run` throws a SafetensorsError whose message contains every fragment. */
function assertRejects(run: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof SafetensorsError, `expected a SafetensorsError, got ${String(caught)}`);
  const message = (caught as Error).message;
  for (const fragment of fragments) {
    assert.ok(message.includes(fragment), `message ${JSON.stringify(message)} should mention ${JSON.stringify(fragment)}`);
  }
}

function parse(headerJson: string, data: ArrayLike<number> = []) {
  return parseSafetensors(buildFile(headerJson, data), "model.safetensors");
}

// --- round trips -------------------------------------------------------------------------------

test("F32 and I64 round trip with metadata", () => {
  const weight = new Float32Array([1.5, -2.25, 0, 3e-8, -0, 65504, 1e30]);
  const labels = new Float32Array([0, -1, 7, 2 ** 24, -(2 ** 20), 123456]);
  const bytes = serializeSafetensors(
    new Map([
      ["layer.weight", { dtype: "F32" as const, shape: [7], data: weight }],
      ["labels", { dtype: "I64" as const, shape: [2, 3], data: labels }],
      ["empty", { dtype: "F32" as const, shape: [0, 4], data: new Float32Array(0) }],
    ]),
    { format: "pt", epoch: "12", note: "ünïcødé ✓" },
  );
  const parsed = parseSafetensors(bytes);
  assert.equal(parsed.metadata, { format: "pt", epoch: "12", note: "ünïcødé ✓" });
  assert.equal([...parsed.tensors.keys()].sort(), ["empty", "labels", "layer.weight"]);
  const w = parsed.tensors.get("layer.weight")!;
  assert.is(w.dtype, "F32");
  assert.equal(w.shape, [7]);
  assert.equal(Array.from(w.data), Array.from(weight));
  assert.ok(Object.is(w.data[4], -0), "negative zero survives");
  const l = parsed.tensors.get("labels")!;
  assert.is(l.dtype, "I64");
  assert.equal(l.shape, [2, 3]);
  assert.equal(Array.from(l.data), [0, -1, 7, 2 ** 24, -(2 ** 20), 123456]);
  const e = parsed.tensors.get("empty")!;
  assert.equal(e.shape, [0, 4]);
  assert.is(e.data.length, 0);
});

test("round trip accepts an iterable of pairs and a subarray view; no metadata gives {}", () => {
  const backing = new Float32Array([9, 1, 2, 3, 9]);
  const bytes = serializeSafetensors([["x", { dtype: "F32", shape: [3], data: backing.subarray(1, 4) }]]);
  const parsed = parseSafetensors(bytes);
  assert.equal(parsed.metadata, {});
  assert.equal(Array.from(parsed.tensors.get("x")!.data), [1, 2, 3]);
  assert.not.ok(new TextDecoder().decode(bytes).includes("__metadata__"));
});

test("reader accepts a file that starts at an odd offset inside a larger buffer", () => {
  const file = serializeSafetensors([["a", { dtype: "F32", shape: [2], data: new Float32Array([0.5, -4]) }]]);
  const container = new Uint8Array(file.length + 3);
  container.set(file, 1);
  const parsed = parseSafetensors(container.subarray(1, 1 + file.length));
  assert.equal(Array.from(parsed.tensors.get("a")!.data), [0.5, -4]);
});

// --- decoding each dtype from hand-built files ---------------------------------------------------

test("F64 values are rounded to float32", () => {
  const { tensors } = parse(
    '{"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}',
    littleEndianBytes("f64", [1 / 3, -1e300, 2.5]),
  );
  const d = tensors.get("d")!;
  assert.is(d.dtype, "F64");
  assert.equal(Array.from(d.data), [Math.fround(1 / 3), -Infinity, 2.5]);
});

test("F16 decodes normals, subnormals, zeros, infinities and NaN exactly", () => {
  const bits = [0x3c00, 0xc000, 0x0001, 0x03ff, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
  const { tensors } = parse(
    `{"h":{"dtype":"F16","shape":[2,5],"data_offsets":[0,${bits.length * 2}]}}`,
    littleEndianBytes("u16", bits),
  );
  const h = tensors.get("h")!;
  assert.equal(h.shape, [2, 5]);
  const values = Array.from(h.data);
  assert.equal(values.slice(0, 5), [1, -2, 2 ** -24, 1023 * 2 ** -24, 65504]);
  assert.ok(Object.is(values[5], -0));
  assert.is(values[6], Infinity);
  assert.is(values[7], -Infinity);
  assert.ok(Number.isNaN(values[8]));
  assert.is(values[9], 0.333251953125); // 0x3555: exponent 13, mantissa 0x155 = 1365 / 4096
});

test("BF16 decodes by widening to float32", () => {
  const { tensors } = parse(
    '{"b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}',
    littleEndianBytes("u16", [0x3f80, 0xc040, 0x0001, 0x7f80]),
  );
  assert.equal(Array.from(tensors.get("b")!.data), [1, -3, 2 ** -133, Infinity]);
});

test("I32, I16, I8, U8 and BOOL decode with their signs", () => {
  const i16 = littleEndianBytes("u16", [0xffff, 0x7fff]);
  const header = JSON.stringify({
    i32: { dtype: "I32", shape: [3], data_offsets: [0, 12] },
    i16: { dtype: "I16", shape: [2], data_offsets: [12, 16] },
    i8: { dtype: "I8", shape: [2], data_offsets: [16, 18] },
    u8: { dtype: "U8", shape: [2], data_offsets: [18, 20] },
    flags: { dtype: "BOOL", shape: [1, 3], data_offsets: [20, 23] },
  });
  const data = [...littleEndianBytes("i32", [-7, 2 ** 31 - 1, 0]), ...i16, 0xff, 0x7f, 0xff, 0x00, 1, 0, 2];
  const { tensors } = parse(header, data);
  assert.equal(Array.from(tensors.get("i32")!.data), [-7, 2 ** 31 - 1, 0].map(Math.fround));
  assert.equal(Array.from(tensors.get("i16")!.data), [-1, 32767]);
  assert.equal(Array.from(tensors.get("i8")!.data), [-1, 127]);
  assert.equal(Array.from(tensors.get("u8")!.data), [255, 0]);
  assert.equal(Array.from(tensors.get("flags")!.data), [1, 0, 1]); // any non-zero byte is true
  assert.is(tensors.get("flags")!.dtype, "BOOL");
});

test("I64 decodes exactly up to 2^53 and F32 at an unaligned offset", () => {
  const header = '{"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
    '"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]},' +
    '"n":{"dtype":"I64","shape":[2],"data_offsets":[5,21]}}';
  const data = [42, ...littleEndianBytes("f32", [-6.5]), ...littleEndianBytes("i64", [-(2 ** 53), 2 ** 53])];
  const { tensors } = parse(header, data);
  assert.equal(Array.from(tensors.get("f")!.data), [-6.5]);
  assert.equal(Array.from(tensors.get("n")!.data), [-(2 ** 53), 2 ** 53]);
});

// --- byte-exact layout ---------------------------------------------------------------------------

test("writer output is byte-identical to the official layout (single F32 tensor)", () => {
  // As safetensors' own test vector: "attn0", F32 [1,1,2,3] = 0..5; header 65 bytes + 7 spaces.
  const headerJson = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  const expected = buildFile(headerJson, littleEndianBytes("f32", [0, 1, 2, 3, 4, 5]), { padTo8: true });
  assert.is(expected[0], 72);
  const actual = serializeSafetensors([["attn0", { dtype: "F32", shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }]]);
  assert.equal(Array.from(actual), Array.from(expected));
});

test("writer puts metadata first and I64 before F32, then names in order", () => {
  const headerJson = '{"__metadata__":{"format":"pt"},' +
    '"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"a":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},' +
    '"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}}';
  const data = [...littleEndianBytes("i64", [1000]), ...littleEndianBytes("f32", [1, -2, 0.5]), ...littleEndianBytes("f32", [7])];
  const expected = buildFile(headerJson, data, { padTo8: true });
  const actual = serializeSafetensors(
    [
      ["b", { dtype: "F32", shape: [1], data: new Float32Array([7]) }],
      ["step", { dtype: "I64", shape: [], data: new Float32Array([1000]) }],
      ["a", { dtype: "F32", shape: [3], data: new Float32Array([1, -2, 0.5]) }],
    ],
    { format: "pt" },
  );
  assert.equal(new TextDecoder().decode(actual.subarray(8, 8 + expected[0]!)).trimEnd(), headerJson);
  assert.equal(Array.from(actual), Array.from(expected));
});

test("writer output for no tensors matches the official empty files", () => {
  assert.equal(Array.from(serializeSafetensors([])), [8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]);
  const withMetadata = serializeSafetensors([], { framework: "pt" });
  assert.equal(Array.from(withMetadata), Array.from(buildFile('{"__metadata__":{"framework":"pt"}}', [], { padTo8: true })));
  assert.is(withMetadata[0], 40);
});

// --- writer rejections ---------------------------------------------------------------------------

test("writer rejects non-integer I64 values, naming the key", () => {
  assertRejects(
    () => serializeSafetensors([["counts", { dtype: "I64", shape: [2], data: new Float32Array([1, 2.5]) }]]),
    '"counts"', "2.5",
  );
  assertRejects(
    () => serializeSafetensors([["big", { dtype: "I64", shape: [1], data: new Float32Array([2 ** 64]) }]]),
    '"big"',
  );
  assertRejects(
    () => serializeSafetensors([["nan", { dtype: "I64", shape: [1], data: new Float32Array([NaN]) }]]),
    '"nan"', "NaN",
  );
});

test("writer rejects a shape that does not match the data, and duplicate keys", () => {
  assertRejects(
    () => serializeSafetensors([["w", { dtype: "F32", shape: [2, 3], data: new Float32Array(5) }]]),
    '"w"', "[2,3]", "6", "5",
  );
  const t = { dtype: "F32" as const, shape: [1], data: new Float32Array(1) };
  assertRejects(() => serializeSafetensors([["dup", t], ["dup", t]]), '"dup"');
});

// --- reader rejections ---------------------------------------------------------------------------

test("rejects a file shorter than 8 bytes", () => {
  assertRejects(() => parseSafetensors(new Uint8Array(5), "tiny.safetensors"), "tiny.safetensors", "5 bytes");
  assertRejects(() => parseSafetensors(new Uint8Array(0)), "safetensors bytes", "0 bytes");
});

test("rejects a header length beyond the file or beyond 100 MB", () => {
  const file = buildFile("{}");
  new DataView(file.buffer).setUint32(0, 500, true);
  assertRejects(() => parseSafetensors(file, "cut.safetensors"), "cut.safetensors", "truncated", "500", "508", "10");
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setUint32(0, 100_000_001, true);
  assertRejects(() => parseSafetensors(huge), "100000001", "100000000");
  const enormous = new Uint8Array(16).fill(0xff, 0, 8);
  assertRejects(() => parseSafetensors(enormous), "18446744073709551615");
});

test("rejects a header that is not UTF-8, not JSON, or not an object", () => {
  const badUtf8 = buildFile("{}    ");
  badUtf8[9] = 0xff;
  assertRejects(() => parseSafetensors(badUtf8, "x.st"), "x.st", "UTF-8");
  assertRejects(() => parse('{"a":'), "model.safetensors", "JSON");
  assertRejects(() => parse("[1,2]"), "object", "[1,2]");
  assertRejects(() => parse("null"), "object", "null");
});

test("rejects entries with missing or mistyped fields", () => {
  assertRejects(() => parse('{"w":{"shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), '"w"', 'missing "dtype"');
  assertRejects(() => parse('{"w":{"dtype":"F32","data_offsets":[0,4]}}', [0, 0, 0, 0]), '"w"', 'missing "shape"');
  assertRejects(() => parse('{"w":{"dtype":"F32","shape":[1]}}', [0, 0, 0, 0]), '"w"', 'missing "data_offsets"');
  assertRejects(() => parse('{"w":7}'), '"w"', "7");
  assertRejects(() => parse('{"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), '"w"', "dtype");
  assertRejects(() => parse('{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}', [0, 0, 0, 0]), '"w"', "shape");
});

test("rejects an unknown dtype, naming it", () => {
  assertRejects(() => parse('{"q":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', [0]), '"q"', "F8_E4M3");
  assertRejects(() => parse('{"q":{"dtype":"float32","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), "float32");
});

test("rejects negative or non-integer dimensions", () => {
  assertRejects(() => parse('{"s":{"dtype":"U8","shape":[2,-1],"data_offsets":[0,0]}}'), '"s"', "-1");
  assertRejects(() => parse('{"s":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', [0]), '"s"', "1.5");
  assertRejects(() => parse('{"s":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}}', [0, 0]), '"s"', '"2"');
});

test("rejects malformed data_offsets", () => {
  assertRejects(() => parse('{"o":{"dtype":"U8","shape":[1],"data_offsets":[0]}}', [0]), '"o"', "[0]");
  assertRejects(() => parse('{"o":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}', [0]), '"o"', "-1");
  assertRejects(() => parse('{"o":{"dtype":"U8","shape":[1],"data_offsets":[0,1.5]}}', [0]), '"o"', "1.5");
  assertRejects(() => parse('{"o":{"dtype":"U8","shape":[1],"data_offsets":[0,1e300]}}', [0]), '"o"', "1e+300");
  assertRejects(() => parse('{"o":{"dtype":"U8","shape":[0],"data_offsets":[3,1]}}', [0, 0, 0]), '"o"', "[3, 1]", "end before");
});

test("rejects a truncated data buffer with expected and actual sizes", () => {
  const full = serializeSafetensors([["w", { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) }]]);
  const cut = full.subarray(0, full.length - 6);
  assertRejects(
    () => parseSafetensors(cut, "partial.safetensors"),
    "partial.safetensors", "truncated", '"w"', `${full.length - 6} bytes`, `at least ${full.length}`, "holds only 10",
  );
});

test("rejects a byte length that does not match shape and dtype", () => {
  assertRejects(
    () => parse('{"m":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', new Array(20).fill(0)),
    '"m"', "[2,3]", "F32", "20 bytes", "24 bytes",
  );
  // A shape whose element count exceeds 2^53 is rejected without trouble.
  assertRejects(
    () => parse('{"m":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'),
    '"m"', "4294967296",
  );
});

test("rejects overlapping tensors, holes and trailing bytes, naming the keys", () => {
  assertRejects(
    () => parse('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}', [1, 2, 3, 4]),
    '"a"', '"b"', "overlap",
  );
  assertRejects(
    () => parse('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}', [1, 2, 3, 4]),
    '"a"', '"b"', "hole", "[2, 3)",
  );
  assertRejects(
    () => parse('{"z":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', [1, 2]),
    '"z"', "hole", "start",
  );
  assertRejects(
    () => parse('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [1, 2, 3]),
    '"a"', "3 bytes", "1 trailing",
  );
  assertRejects(() => parse("{}", [9]), "1 trailing");
});

test("rejects __metadata__ that is not an object of strings", () => {
  assertRejects(() => parse('{"__metadata__":{"epoch":3}}'), "__metadata__", '"epoch"', "3");
  assertRejects(() => parse('{"__metadata__":["pt"]}'), "__metadata__", '["pt"]');
});

test("rejects I64 values beyond 2^53", () => {
  const data = littleEndianBytes("i64", [5]);
  const bytes = buildFile('{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}', [...data, ...new Array(8).fill(0)]);
  new DataView(bytes.buffer).setBigInt64(bytes.length - 8, 2n ** 53n + 1n, true);
  assertRejects(() => parseSafetensors(bytes), '"ids"', "9007199254740993");
});

test.run();
