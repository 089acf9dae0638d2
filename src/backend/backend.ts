/**
 * The Backend interface: the only thing ops talk to. A backend owns device memory (opaque
 * `DeviceBuffer`s) and runs kernels on it; it knows nothing of tensors, shapes beyond the
 * numbers each kernel needs, or autograd. The CPU backend (wasm) implements it now; the
 * WebGPU backend implements the same methods, so ops never branch on the backend.
 */

/** A block of device memory holding `length` float32 (or int32) elements. */
export interface DeviceBuffer {
  readonly length: number;
}

/** Geometry of a 2-D convolution; OH/OW are derived by the op and passed down. */
export interface ConvGeometry {
  N: number; C: number; H: number; W: number;
  O: number; KH: number; KW: number;
  SH: number; SW: number; PH: number; PW: number; DH: number; DW: number;
  G: number; OH: number; OW: number;
}

/** Geometry of a 2-D pooling window. */
export interface PoolGeometry {
  N: number; C: number; H: number; W: number;
  KH: number; KW: number; SH: number; SW: number; PH: number; PW: number;
  OH: number; OW: number;
}

/** A broadcast: output dims (rank 4) and each operand's element strides (0 on broadcast dims). */
export interface Broadcast4 {
  dims: [number, number, number, number];
  aStrides: [number, number, number, number];
  bStrides: [number, number, number, number];
}

export type BinaryOp = "add" | "sub" | "mul" | "div";

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** One parameter's part in an SGD step. */
export interface SgdParam {
  param: DeviceBuffer;
  grad: DeviceBuffer;
  /** The momentum buffer: required when the step's momentum is not 0, else null. */
  momentum: DeviceBuffer | null;
  /** Set the buffer to the (decayed) gradient instead of reading it, as torch.optim.SGD's first step does. */
  firstStep: boolean;
}

export interface MemoryInfo {
  /** Bytes held by live buffers now. */
  bytesInUse: number;
  /** Highest bytesInUse since start (or the last resetPeak). */
  peakBytes: number;
  /** Live buffers. */
  buffers: number;
}

export interface Backend {
  readonly name: string;

  alloc(length: number): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  write(buf: DeviceBuffer, data: Float32Array | Int32Array): void;
  read(buf: DeviceBuffer): Promise<Float32Array>;
  /** Synchronous read; only backends whose memory the host can see (CPU) provide it. */
  readSync?(buf: DeviceBuffer): Float32Array;
  memory(): MemoryInfo;
  resetPeak(): void;

  fill(y: DeviceBuffer, value: number): void;
  copy(x: DeviceBuffer, y: DeviceBuffer): void;
  /** y += alpha·x */
  axpy(alpha: number, x: DeviceBuffer, y: DeviceBuffer): void;
  /** y = alpha·x */
  scale(x: DeviceBuffer, y: DeviceBuffer, alpha: number): void;
  randomUniform(y: DeviceBuffer, lo: number, hi: number, key: number, counter: number): void;
  randomNormal(y: DeviceBuffer, mean: number, std: number, key: number, counter: number): void;

  /** C[M×N] = alpha·op(A)·op(B) + beta·C, row-major, with op = transpose when flagged. */
  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: DeviceBuffer, B: DeviceBuffer, beta: number, C: DeviceBuffer,
  ): void;

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void;
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void;
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void;

  batchNormTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void;
  batchNormEvalForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer,
    runningMean: DeviceBuffer, runningVar: DeviceBuffer, y: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void;
  batchNormBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number,
  ): void;
  batchNormEvalBackward(
    dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, runningMean: DeviceBuffer,
    runningVar: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    N: number, C: number, HW: number, eps: number,
  ): void;
  /**
   * y = relu(residual + batchNormTrainForward(x)), residual (x's shape) optional: the
   * normalised values are never stored. The CPU gives the bits of the separate kernels.
   */
  batchNormReluTrainForward(
    x: DeviceBuffer, gamma: DeviceBuffer, beta: DeviceBuffer, residual: DeviceBuffer | null, y: DeviceBuffer,
    saveMean: DeviceBuffer, saveInvstd: DeviceBuffer,
    runningMean: DeviceBuffer | null, runningVar: DeviceBuffer | null,
    N: number, C: number, HW: number, momentum: number, eps: number,
  ): void;
  /**
   * The backward of batchNormReluTrainForward from its output y: dy masked by y > 0 goes
   * through batchNormBackward, and into dresidual (the residual's gradient) when given.
   * dx may be dy itself (computed in place).
   */
  batchNormReluBackward(
    dy: DeviceBuffer, y: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, saveMean: DeviceBuffer,
    saveInvstd: DeviceBuffer, dx: DeviceBuffer, dgamma: DeviceBuffer, dbeta: DeviceBuffer,
    dresidual: DeviceBuffer | null, N: number, C: number, HW: number,
  ): void;

  reluForward(x: DeviceBuffer, y: DeviceBuffer): void;
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void;
  sigmoidForward(x: DeviceBuffer, y: DeviceBuffer): void;
  sigmoidBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void;
  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void;
  /** Sum x (shape bc.dims) into y along the dims where bc.aStrides is 0. */
  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void;
  dropoutForward(
    x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, key: number, counter: number,
  ): void;

  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void;
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void;
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void;
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry, countIncludePad: boolean): void;

  /** Per-sample cross-entropy against labels smoothed by `smoothing`. */
  softmaxCrossEntropy(
    logits: DeviceBuffer, labels: DeviceBuffer, losses: DeviceBuffer,
    N: number, C: number, smoothing: number,
  ): void;
  /** dlogits = (softmax(alpha·z) − q)·scale: alpha = 1 is plain CE, alpha < 1 is PowerGrad. */
  softmaxCrossEntropyBackward(
    logits: DeviceBuffer, labels: DeviceBuffer, dlogits: DeviceBuffer,
    N: number, C: number, smoothing: number, alpha: number, scale: number,
  ): void;

  /**
   * One torch.optim.SGD step over every listed parameter (weight decay added to the gradient,
   * momentum with dampening, Nesterov); the parameters are independent, so a backend may fuse
   * them into one kernel.
   */
  sgdStep(params: readonly SgdParam[], opts: SgdOptions): void;
}
