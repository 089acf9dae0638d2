/// <reference types="@webgpu/types" />
/**
 * rg.useWebGPU(): one call that selects the WebGPU device or throws a WebGPUUnavailableError
 * saying why none is usable. The refusals are checked on stand-in GPU objects (no adapter, a
 * software adapter, a refused device) and, where the runtime has no navigator.gpu (Node),
 * on the real absence; where a real adapter exists (Deno on lavapipe here, a software one),
 * useWebGPU refuses it by default and, with allowSoftware, makes it the backend new tensors
 * land on, computing correctly.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";

async function refusal(opts: rg.UseWebGPUOptions): Promise<rg.WebGPUUnavailableError> {
  try {
    await rg.useWebGPU(opts);
  } catch (error) {
    assert.instance(error, rg.WebGPUUnavailableError);
    return error as rg.WebGPUUnavailableError;
  }
  throw new Error("useWebGPU did not refuse");
}

/** A stand-in for navigator.gpu whose adapter is `adapter`. */
const fakeGpu = (adapter: Partial<GPUAdapter> | null) => ({ requestAdapter: async () => adapter }) as unknown as GPU;
const softwareAdapter = { info: { isFallbackAdapter: true, vendor: "mesa", description: "llvmpipe" } } as unknown as GPUAdapter;

test("no adapter: the reason says so", async () => {
  const e = await refusal({ gpu: fakeGpu(null) });
  assert.is(e.reason, "no-adapter");
  assert.match(e.message, /found no adapter/);
});

test("a software adapter is refused unless allowed, naming it", async () => {
  const e = await refusal({ gpu: fakeGpu(softwareAdapter) });
  assert.is(e.reason, "software-adapter");
  assert.match(e.message, /only adapter is a software one \(mesa llvmpipe\).*allowSoftware: true/);
});

test("a device the adapter refuses", async () => {
  const adapter = {
    info: { vendor: "acme" }, limits: {}, requestDevice: async () => { throw new Error("out of device memory"); },
  } as unknown as GPUAdapter;
  const e = await refusal({ gpu: fakeGpu(adapter) });
  assert.is(e.reason, "device-refused");
  assert.match(e.message, /acme refused a device: out of device memory/);
  assert.is(rg.getBackend().name, "cpu", "the default backend is unchanged after a refusal");
});

const realGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;

(realGpu ? test.skip : test)("a runtime without navigator.gpu: the reason says so and what to do", async () => {
  const e = await refusal({});
  assert.is(e.reason, "no-api");
  assert.match(e.message, /no navigator\.gpu.*npm package `webgpu`/);
});

(realGpu ? test : test.skip)("the runtime's adapter: refused while software, else (or when allowed) the backend of new tensors", async () => {
  const adapter = await realGpu!.requestAdapter();
  const software = Boolean((adapter?.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter);
  if (software) assert.is((await refusal({})).reason, "software-adapter");
  const backend = await rg.useWebGPU({ allowSoftware: true });
  try {
    assert.is(rg.getBackend(), backend);
    const y = rg.add(rg.tensor([1, 2, 3]), rg.tensor([10, 20, 30]));
    assert.is(y.backend, backend);
    assert.equal([...await y.data()], [11, 22, 33]);
  } finally {
    rg.setBackend("cpu");
  }
});

test.run();
