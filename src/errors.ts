/**
 * Typed errors. Every error retrograd raises on bad input is one of these, and its message
 * names what was wrong (the op, tensor, shape, key or file), so a user can fix the call
 * without reading our source. Catch `RetrogradError` to catch them all.
 */

export class RetrogradError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An op got tensors whose shapes do not fit together. */
export class ShapeError extends RetrogradError {}

/** A value (option, label, hyper-parameter) is out of its allowed range. */
export class ValueError extends RetrogradError {}

/** A state dict does not match a module: missing, unexpected or mis-shaped keys. */
export class StateDictError extends RetrogradError {
  constructor(
    message: string,
    readonly missing: string[] = [],
    readonly unexpected: string[] = [],
    readonly mismatched: string[] = [],
  ) {
    super(message);
  }
}

/** A safetensors file is truncated, malformed or holds something we cannot read. */
export class SafetensorsError extends RetrogradError {}

/** A tensor was used after dispose(), or a graph after its backward pass freed it. */
export class DisposedError extends RetrogradError {}

/** Something went wrong on the GPU: a validation error the device reported, a size it cannot take. */
export class WebGPUError extends RetrogradError {}

/** The WebGPU device was lost (driver reset, tab backgrounded, destroy()); its buffers are gone. */
export class DeviceLostError extends WebGPUError {}

/** The device could not allocate memory; the buffers of the step it was in are unusable. */
export class OutOfMemoryError extends WebGPUError {}

/** Why no WebGPU device could be had, for the caller to report or fall back on the CPU. */
export type WebGPUUnavailableReason = "no-api" | "no-adapter" | "software-adapter" | "device-refused";

/** No usable WebGPU device: `reason` says which step failed, the message what to do. */
export class WebGPUUnavailableError extends WebGPUError {
  constructor(readonly reason: WebGPUUnavailableReason, message: string) {
    super(message);
  }
}
