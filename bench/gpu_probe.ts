/// <reference types="@webgpu/types" />
/**
 * The adapter check of bench/gpu-check.sh (run there under Deno): which adapter
 * `navigator.gpu.requestAdapter()` gives (the call createWebGPUBackend makes, so it is the
 * adapter the bench then times), whether it is a software one (WebGPU's isFallbackAdapter, or
 * a software rasteriser's name: lavapipe/llvmpipe, SwiftShader), and whether retrograd opens
 * a device on it with the limits it asks for. Prints one JSON object on stdout and exits 0
 * whatever it finds: the script decides what a missing or software adapter means and says so.
 */
import { createWebGPUBackend } from "../src/backend/webgpu.ts";

const SOFTWARE_NAMES = /llvmpipe|lavapipe|swiftshader|softpipe/i;
/** PCI vendor ids as wgpu reports them (decimal strings); 0x10005 is Mesa's id for its CPU drivers. */
const VENDORS: Record<string, string> = { "4318": "NVIDIA", "4098": "AMD", "32902": "Intel", "65541": "Mesa (CPU)" };

async function probe(): Promise<Record<string, unknown>> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return { found: false, reason: "this runtime has no navigator.gpu" };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { found: false, reason: "navigator.gpu.requestAdapter() gave no adapter (no Vulkan driver that loads)" };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const fallback = info.isFallbackAdapter === true;
  const software = fallback || SOFTWARE_NAMES.test(`${info.description} ${info.device} ${info.architecture}`);
  const l = adapter.limits;
  let deviceError: string | undefined;
  try {
    if (!await createWebGPUBackend({ allowFallback: true })) deviceError = "createWebGPUBackend gave null";
  } catch (e) {
    deviceError = String(e);
  }
  return {
    found: true,
    software,
    vendorName: VENDORS[info.vendor] ?? "unknown",
    info: {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      isFallbackAdapter: info.isFallbackAdapter,
    },
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    },
    features: [...adapter.features].sort(),
    deviceOpened: deviceError === undefined,
    ...(deviceError ? { deviceError } : {}),
  };
}

console.log(JSON.stringify(await probe()));
