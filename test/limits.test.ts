/**
 * Resources stay bounded and their limits are typed errors, not crashes: a CPU tensor the
 * 4 GiB wasm heap cannot hold is an OutOfMemoryError naming the request and what is in use,
 * and leaves the backend usable; a thread count that is not a positive integer is refused
 * before it reaches the kernels; a safetensors header nested thousands deep is a
 * SafetensorsError with a short message, not a stack overflow; gzip data inflates only as far
 * as the IDX header it starts with declares (or a stated maximum), so a gzip bomb is refused
 * after kilobytes, not gigabytes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gzipSync } from "node:zlib";
import * as rg from "../src/mod.ts";

test("a CPU tensor larger than the heap can grow to is an OutOfMemoryError, and the backend stays usable", () => {
  const held = rg.keep(rg.ones([1000]));
  const before = rg.memory();
  const floats = 5 * 2 ** 28; // 5 GiB: past the 4 GiB a wasm32 memory may hold
  assert.throws(() => rg.zeros([floats]), (e: unknown) =>
    e instanceof rg.OutOfMemoryError && e instanceof rg.RetrogradError &&
    (e as Error).message.includes(`a tensor of ${floats} floats`) && (e as Error).message.includes(`${before.bytesInUse} bytes in use`));
  assert.equal(rg.memory().bytesInUse, before.bytesInUse, "nothing counted for the failed request");
  // A request that must grow the heap still works, and lands where the old tensors do not.
  const big = rg.full([4 * 2 ** 20], 2);
  assert.is(big.dataSync()[4 * 2 ** 20 - 1], 2);
  assert.equal([...held.dataSync().subarray(0, 3)], [1, 1, 1], "live tensors are untouched");
  assert.is(rg.sum(rg.ones([10])).item(), 10);
  big.dispose();
  held.dispose();
});

test("setThreads refuses a count that is not an integer ≥ 1, naming it", async () => {
  for (const bad of [NaN, 0, -2, 1.5, Infinity]) {
    let error: unknown;
    try {
      await rg.setThreads(bad);
    } catch (e) {
      error = e;
    }
    assert.instance(error, rg.ValueError, `setThreads(${bad})`);
    assert.match((error as Error).message, `got ${bad}`);
  }
  assert.is(await rg.setThreads(1), 1);
});

test("a safetensors header nested 5000 deep (about 10 KB) is a SafetensorsError with a short message", () => {
  const deep = "[".repeat(5000) + "]".repeat(5000);
  const headers = {
    shape: `{"a":{"dtype":"F32","shape":${deep},"data_offsets":[0,0]}}`,
    dtype: `{"a":{"dtype":${deep},"shape":[],"data_offsets":[0,0]}}`,
    metadata: `{"__metadata__":${deep}}`,
    header: deep,
  };
  for (const [where, header] of Object.entries(headers)) {
    const text = new TextEncoder().encode(header);
    const bytes = new Uint8Array(8 + text.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
    bytes.set(text, 8);
    assert.throws(() => rg.io.readSafetensors(bytes, "deep.safetensors"), (e: unknown) =>
      e instanceof rg.SafetensorsError && (e as Error).message.startsWith("deep.safetensors: ") && (e as Error).message.length < 200,
    `nested in the ${where}`);
  }
});

/** An IDX header for unsigned bytes of shape `dims`. */
function idxHeader(dims: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => new DataView(out.buffer).setUint32(4 + 4 * i, d));
  return out;
}

test("a gzipped IDX file that inflates past what its header declares stops there: a gzip bomb costs kilobytes", async () => {
  const header = idxHeader([10, 28, 28]);
  const inflated = new Uint8Array(header.length + 2 ** 26); // 64 MiB of zeros where 7840 bytes are declared
  inflated.set(header);
  const bomb = gzipSync(inflated);
  let error: unknown;
  try {
    await rg.data.readIdx(bomb, "bomb.gz");
  } catch (e) {
    error = e;
  }
  assert.instance(error, rg.data.DatasetError);
  const message = (error as Error).message;
  assert.match(message, "bomb.gz: the gzip data inflates to more than the 7856 bytes its IDX header declares (dims [10, 28, 28])");
  const stoppedAt = Number(/stopped after (\d+) bytes/.exec(message)?.[1]);
  // Within one input slice's worth (4 KiB in, at most ~4 MiB out) of the bound, not the 64 MiB.
  assert.ok(stoppedAt < 2 ** 23, `inflated ${stoppedAt} bytes before stopping`);

  // The file as declared reads back; a bound on gunzip itself holds for data without a header.
  const exact = gzipSync(inflated.subarray(0, header.length + 7840));
  assert.equal((await rg.data.readIdx(exact, "exact.gz")).dims, [10, 28, 28]);
  let capped: unknown;
  try {
    await rg.data.gunzip(bomb, "raw.gz", { maxBytes: 2 ** 20 });
  } catch (e) {
    capped = e;
  }
  assert.match((capped as Error).message, `raw.gz: the gzip data inflates to more than the ${2 ** 20} bytes a dataset file may inflate to`);
});

test.run();
