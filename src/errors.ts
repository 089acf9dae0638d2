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

  /**
   * The error a strict load raises, listing every problem at once ("`who`: missing keys: …");
   * null when there is none to raise (only mismatches count when not `strict`).
   */
  static check(who: string, strict: boolean, missing: string[], unexpected: string[], mismatched: string[]): StateDictError | null {
    if (mismatched.length === 0 && (!strict || (missing.length === 0 && unexpected.length === 0))) return null;
    const parts = [
      missing.length ? `missing keys: ${missing.join(", ")}` : "",
      unexpected.length ? `unexpected keys: ${unexpected.join(", ")}` : "",
      mismatched.length ? `shape mismatch: ${mismatched.join("; ")}` : "",
    ].filter(Boolean);
    return new StateDictError(`${who}: ${parts.join(". ")}`, missing, unexpected, mismatched);
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

/**
 * A backend could not allocate memory. On the CPU the heap (one WebAssembly.Memory, 4 GiB at
 * most) could not grow: nothing was allocated and the backend stays usable (free tensors or
 * use smaller batches). On WebGPU the device ran out: the buffers of the step it was in are
 * lost. The message names the request and what was in use.
 */
export class OutOfMemoryError extends RetrogradError {}

/**
 * Training met a non-finite loss or gradient norm (or evaluation a non-finite loss): the
 * step it names was not applied, so the weights are those after the step before it.
 */
export class DivergenceError extends RetrogradError {
  constructor(
    message: string,
    /** The optimiser step (1-based) whose loss or gradient was not finite. */
    readonly step: number,
    /** The epoch (1-based) it belongs to. */
    readonly epoch: number,
    /** The loss of the last step that was finite (NaN when there was none). */
    readonly lastFiniteLoss: number,
  ) {
    super(message);
  }
}

/** A checkpoint or run directory holds something that cannot be trusted: it names the file and the field. */
export class CheckpointError extends RetrogradError {}

/** Why no WebGPU device could be had, for the caller to report or fall back on the CPU. */
export type WebGPUUnavailableReason = "no-api" | "no-adapter" | "software-adapter" | "device-refused";

/** No usable WebGPU device: `reason` says which step failed, the message what to do. */
export class WebGPUUnavailableError extends WebGPUError {
  constructor(readonly reason: WebGPUUnavailableReason, message: string) {
    super(message);
  }
}
