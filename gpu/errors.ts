/**
 * How the WebGPU plumbing reports failures. gpu/ is a layer below the runtime and imports
 * nothing from src/, so the runtime passes in the constructors of its own typed errors
 * (src/backend/webgpu.ts hands over DeviceLostError, OutOfMemoryError and WebGPUError);
 * used on its own, the plumbing throws plain Errors.
 */
export interface GpuErrors {
  /** The device is gone (driver reset, tab backgrounded, destroy()); so are its buffers. */
  lost(message: string): Error;
  /** The device could not allocate memory. */
  outOfMemory(message: string): Error;
  /** Anything else: a validation error the device reported, a size it cannot take. */
  failure(message: string): Error;
}

export const plainGpuErrors: GpuErrors = {
  lost: (message) => new Error(message),
  outOfMemory: (message) => new Error(message),
  failure: (message) => new Error(message),
};
