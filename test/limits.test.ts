/**
 * Resources stay bounded and their limits are typed errors, not crashes: a CPU tensor the
 * 4 GiB wasm heap cannot hold is an OutOfMemoryError naming the request and what is in use,
 * and leaves the backend usable; a thread count that is not a positive integer is refused
 * before it reaches the kernels.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
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

test.run();
