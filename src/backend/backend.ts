/**
 * The Backend interface: the only thing ops talk to. A backend owns device memory (opaque
 * `DeviceBuffer`s) and runs kernels on it; it knows nothing of tensors, shapes beyond the
 * numbers each kernel needs, or autograd. The CPU backend (wasm) and the WebGPU backend
 * implement the same methods, so ops never branch on the backend. Kernels take structured
 * records (geometry, parameters) rather than long positional lists. A generic tier of kernel
 * families with op codes (unary and its backward, binary with comparisons, where, axis
 * reductions) lets ops compose in TypeScript: a new unary op is one case per backend. Fused
 * kernels (BatchNorm→ReLU, the SGD step) are optional fast paths: the ops above compose the
 * same result from the required kernels where a backend lacks them.
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

/**
 * y = a op b elementwise: arithmetic, the NaN-propagating maximum/minimum, and comparisons
 * that write 1 where they hold and 0 elsewhere (false wherever an operand is NaN, but for ne).
 */
export type BinaryOp =
  | "add" | "sub" | "mul" | "div"
  | "maximum" | "minimum"
  | "eq" | "ne" | "lt" | "le" | "gt" | "ge";

/** A three-operand broadcast (where): Broadcast4 plus the condition's strides. */
export interface BroadcastSelect extends Broadcast4 {
  cStrides: [number, number, number, number];
}

/**
 * The unary ops of the generic tier, one kernel family with an op code (the position in this
 * list on the CPU). NaN propagates as in PyTorch; sign(NaN) = 0; round is half to even.
 */
export const UNARY_OPS = [
  "exp", "log", "sqrt", "rsqrt", "abs", "sign", "neg", "square", "pow", "clamp", "floor", "round", "tanh",
] as const;
export type UnaryOp = typeof UNARY_OPS[number];

/**
 * Which forward tensor unaryBackward reads for each op: the input x, the output y, or neither
 * (dy alone decides). It reads only that one, so the op keeps only that one for the backward
 * pass and may pass the same buffer as both x and y.
 */
export const UNARY_GRAD_READS: Record<UnaryOp, "x" | "y" | "none"> = {
  exp: "y", log: "x", sqrt: "y", rsqrt: "y", abs: "x", sign: "none", neg: "none", square: "x", pow: "x",
  clamp: "x", floor: "none", round: "none", tanh: "y",
};

/** The scalars of the unary ops that take any: pow's exponent, clamp's bounds (absent: unbounded). */
export interface UnaryParams {
  exponent?: number;
  min?: number;
  max?: number;
}

/**
 * The two scalars every unary kernel takes: (exponent, exponent − 1) for pow (its gradient
 * needs x^(p−1), with p − 1 taken in double precision as PyTorch does), (min, max) for clamp
 * with ±Infinity for an absent bound, zeros otherwise.
 */
export function unaryScalars(op: UnaryOp, params: UnaryParams): [number, number] {
  if (op === "pow") return [params.exponent ?? 1, (params.exponent ?? 1) - 1];
  if (op === "clamp") return [params.min ?? -Infinity, params.max ?? Infinity];
  return [0, 0];
}

/** x read as [outer, size, inner] (row-major): a reduction over the middle axis into y [outer, inner]. */
export interface AxisView {
  outer: number;
  size: number;
  inner: number;
}

/**
 * What reduceAxis computes. sum: Σ / divisor in float64, rounded once (a mean passes the
 * count). max/min: the first NaN, else the first extreme value; `indices` (or null) receives
 * its position along the axis, as a float.
 */
export type AxisReduction =
  | { op: "sum"; divisor: number }
  | { op: "max" | "min"; indices: DeviceBuffer | null };

/** op(A)·op(B) for gemm: C[M×N] = alpha·op(A)·op(B) + beta·C, row-major, op = transpose when flagged. */
export interface GemmArgs {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  a: DeviceBuffer;
  b: DeviceBuffer;
  beta: number;
  c: DeviceBuffer;
}

/** An input of BatchNorm: N samples of C channels of HW values, with the per-channel affine. */
export interface BatchNormInput {
  x: DeviceBuffer;
  gamma: DeviceBuffer;
  beta: DeviceBuffer;
  N: number;
  C: number;
  HW: number;
  eps: number;
}

/** The running statistics a training forward moves by `momentum` (PyTorch's update). */
export interface RunningStats {
  mean: DeviceBuffer;
  var: DeviceBuffer;
  momentum: number;
}

/** Training mode: normalise by the batch statistics, saved for the backward pass. */
export interface BatchNormTrainArgs extends BatchNormInput {
  y: DeviceBuffer;
  saveMean: DeviceBuffer;
  saveInvstd: DeviceBuffer;
  /** null: the statistics are not tracked (trackRunningStats false) or are frozen. */
  running: RunningStats | null;
}

/**
 * Evaluation mode: normalise by the running statistics. With `relu`, y = relu(residual +
 * batchNorm(x)) in the same pass (the residual, of x's shape, optional), the bits of the three
 * ops apart; `residual` only with `relu`.
 */
export interface BatchNormEvalArgs extends BatchNormInput {
  y: DeviceBuffer;
  runningMean: DeviceBuffer;
  runningVar: DeviceBuffer;
  relu: boolean;
  residual: DeviceBuffer | null;
}

/** The statistics a BatchNorm forward normalised by: the saved batch ones, or the running ones. */
export type BatchNormStats =
  | { kind: "batch"; mean: DeviceBuffer; invstd: DeviceBuffer }
  | { kind: "running"; mean: DeviceBuffer; var: DeviceBuffer };

export interface BatchNormBackwardArgs extends BatchNormInput {
  dy: DeviceBuffer;
  stats: BatchNormStats;
  dx: DeviceBuffer;
  dgamma: DeviceBuffer;
  dbeta: DeviceBuffer;
}

/** Softmax cross-entropy of N rows of C logits against int32 labels smoothed by `smoothing`. */
export interface SoftmaxXentArgs {
  logits: DeviceBuffer;
  labels: DeviceBuffer;
  N: number;
  C: number;
  smoothing: number;
}

/** A seeded draw: the global generator's stream `key` from draw number `counter` on. */
export interface DrawPosition {
  key: number;
  counter: number;
}

/** What a random fill draws. */
export type Distribution =
  | { kind: "uniform"; low: number; high: number }
  | { kind: "normal"; mean: number; std: number }
  /** 1 where the draw's uniform u (24 bits) is below p (rounded to float32), else 0. */
  | { kind: "bernoulli"; p: number };

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

/**
 * A stack of `batch` symmetric row-major [n, n] matrices (only the upper triangle is read)
 * and where their eigendecompositions go: `values` [batch, n], descending (ties in input
 * order), and `vectors` [batch, n, n] whose column i is the unit eigenvector of value i, its
 * sign fixed so that its largest-magnitude component (the first, on a tie) is positive.
 */
export interface SymmetricEigenArgs {
  m: DeviceBuffer;
  values: DeviceBuffer;
  vectors: DeviceBuffer;
  batch: number;
  n: number;
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
  /** Fill y with draws of `dist`, element i from draw number at.counter + i of stream at.key. */
  random(y: DeviceBuffer, dist: Distribution, at: DrawPosition): void;

  gemm(args: GemmArgs): void;

  conv2dForward(x: DeviceBuffer, w: DeviceBuffer, y: DeviceBuffer, g: ConvGeometry): void;
  conv2dBackwardInput(dy: DeviceBuffer, w: DeviceBuffer, dx: DeviceBuffer, g: ConvGeometry): void;
  conv2dBackwardWeight(dy: DeviceBuffer, x: DeviceBuffer, dw: DeviceBuffer, g: ConvGeometry): void;

  batchNormTrainForward(args: BatchNormTrainArgs): void;
  batchNormEvalForward(args: BatchNormEvalArgs): void;
  batchNormBackward(args: BatchNormBackwardArgs): void;
  /**
   * Optional fast path: y = relu(residual + batchNormTrainForward(x)), residual (x's shape)
   * optional, without storing the normalised values. The CPU gives the bits of the separate
   * kernels. Without it, ops/norm.ts composes the same from the kernels above.
   */
  batchNormReluTrainForward?(args: BatchNormTrainArgs & { residual: DeviceBuffer | null }): void;
  /**
   * Optional fast path: the backward of batchNormReluTrainForward from its output y: dy masked
   * by y > 0 goes through batchNormBackward (batch statistics), and into dresidual (the
   * residual's gradient) when given. dx may be dy itself (computed in place).
   */
  batchNormReluBackward?(args: BatchNormBackwardArgs & { y: DeviceBuffer; dresidual: DeviceBuffer | null }): void;

  reluForward(x: DeviceBuffer, y: DeviceBuffer): void;
  reluBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void;
  sigmoidForward(x: DeviceBuffer, y: DeviceBuffer): void;
  sigmoidBackward(y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer): void;
  binary(op: BinaryOp, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void;
  /** y = cond ≠ 0 ? a : b (a NaN condition counts as true, as bool(NaN) does), broadcast. */
  where(cond: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, y: DeviceBuffer, bc: BroadcastSelect): void;
  /** y = op(x) elementwise. */
  unary(op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, params: UnaryParams): void;
  /**
   * dx = dy·op′ from the input x or the output y (PyTorch's derivative formulas; floor, round
   * and sign give 0, even where dy is not finite; clamp passes dy where min ≤ x ≤ max).
   */
  unaryBackward(
    op: UnaryOp, x: DeviceBuffer, y: DeviceBuffer, dy: DeviceBuffer, dx: DeviceBuffer, params: UnaryParams,
  ): void;
  /** y[o, i] = reduction over s of x[o, s, i] (see AxisReduction). */
  reduceAxis(x: DeviceBuffer, y: DeviceBuffer, view: AxisView, reduction: AxisReduction): void;
  /** The backward of a max/min with indices: dx[o, s, i] = s = indices[o, i] ? dy[o, i] : 0. */
  scatterAxis(dy: DeviceBuffer, indices: DeviceBuffer, dx: DeviceBuffer, view: AxisView): void;
  /** Sum x (shape bc.dims) into y along the dims where bc.aStrides is 0. */
  reduceBroadcast(x: DeviceBuffer, y: DeviceBuffer, bc: Broadcast4): void;
  /** Inverted dropout: y = x·mask with mask 0 (probability p) or 1/(1−p), drawn at `at`. */
  dropoutForward(x: DeviceBuffer, y: DeviceBuffer, mask: DeviceBuffer, p: number, at: DrawPosition): void;

  maxPoolForward(x: DeviceBuffer, y: DeviceBuffer, argmax: DeviceBuffer, g: PoolGeometry): void;
  maxPoolBackward(dy: DeviceBuffer, argmax: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry): void;
  avgPoolForward(x: DeviceBuffer, y: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void;
  avgPoolBackward(dy: DeviceBuffer, dx: DeviceBuffer, g: PoolGeometry & { countIncludePad: boolean }): void;

  /** Per-sample cross-entropy into `losses` (N values). */
  softmaxCrossEntropy(args: SoftmaxXentArgs, losses: DeviceBuffer): void;
  /** dlogits = (softmax(alpha·z) − q)·scale: alpha = 1 is plain CE, alpha < 1 is PowerGrad. */
  softmaxCrossEntropyBackward(args: SoftmaxXentArgs, dlogits: DeviceBuffer, alpha: number, scale: number): void;

  /**
   * The eigendecompositions of a stack of small symmetric matrices (see SymmetricEigenArgs).
   * A backend may bound n; it refuses larger matrices with a ShapeError naming n.
   */
  symmetricEigen(args: SymmetricEigenArgs): void;

  /**
   * Optional fast path: one torch.optim.SGD step over every listed parameter (weight decay
   * added to the gradient, momentum with dampening, Nesterov); the parameters are independent,
   * so a backend may fuse them into one kernel. Without it, optim/sgd.ts runs the same update
   * as tensor ops.
   */
  sgdStep?(params: readonly SgdParam[], opts: SgdOptions): void;
}
