/**
 * The kernels' ABI: every function the wasm module exports, with its parameters by name, in
 * one list. The `Kernels` type is derived from it, so a call with the wrong number of
 * arguments is a compile error, and `checkKernelExports` compares it with what the module
 * really exports when an instance is made (a wasm function's `length` is its parameter
 * count), so an AssemblyScript signature that drifts from this list fails at load, not as a
 * silently shifted argument. Pointers are byte offsets into the shared linear memory; flags
 * are 0/1.
 */

const CONV = ["N", "C", "H", "W", "O", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "G", "OH", "OW"] as const;
const POOL = ["N", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW", "OH", "OW"] as const;
const DIMS4 = ["d0", "d1", "d2", "d3"] as const;

export const KERNEL_ABI = {
  gemm_scratch_bytes: [],
  set_gemm_scratch: ["ptr"],
  simd_peak: ["iters"],
  set_tile_loads: ["shuffled"],
  tile_loads: [],
  tile_loads_probe: ["shuffled", "reps"],
  gemm: ["transA", "transB", "M", "N", "K", "alpha", "A", "lda", "B", "ldb", "beta", "C", "ldc"],
  conv_scratch_floats: ["kind", ...CONV],
  conv2d_forward: ["x", "w", "y", "col", ...CONV],
  conv2d_backward_input: ["dy", "w", "dx", "col", ...CONV],
  conv2d_backward_weight: ["dy", "x", "dw", "col", ...CONV, "c0", "c1"],
  winograd_filters: ["w", "u", "C", "O", "backward", "k0", "k1"],
  conv2d_forward_winograd: ["x", "u", "y", "col", ...CONV],
  conv2d_backward_input_winograd: ["dy", "u", "dx", "col", ...CONV],
  conv2d_backward_weight_winograd: ["dy", "x", "du", "col", ...CONV, "n0", "n1", "c0", "c1"],
  winograd_weight_output: ["du", "groups", "dw", "C", "O", "m0", "m1"],
  batchnorm_train_forward: [
    "x", "gamma", "beta", "residual", "y", "saveMean", "saveInvstd", "runningMean", "runningVar",
    "N", "C", "HW", "momentum", "eps", "updateRunning", "relu", "c0", "c1",
  ],
  batchnorm_eval_forward: [
    "x", "gamma", "beta", "residual", "runningMean", "runningVar", "y", "N", "C", "HW", "eps", "relu", "c0", "c1",
  ],
  batchnorm_backward: [
    "dy", "y", "x", "gamma", "saveMean", "saveInvstd", "dx", "dgamma", "dbeta", "dres", "N", "C", "HW", "c0", "c1",
  ],
  batchnorm_eval_backward: [
    "dy", "x", "gamma", "runningMean", "runningVar", "dx", "dgamma", "dbeta", "N", "C", "HW", "eps", "c0", "c1",
  ],
  relu_forward: ["x", "y", "n"],
  relu_backward: ["y", "dy", "dx", "n"],
  sigmoid_forward: ["x", "y", "n"],
  sigmoid_backward: ["y", "dy", "dx", "n"],
  broadcast_binary: ["op", "a", "b", "y", ...DIMS4, "as0", "as1", "as2", "as3", "bs0", "bs1", "bs2", "bs3"],
  reduce_broadcast: ["x", "y", "ySize", ...DIMS4, "ys0", "ys1", "ys2", "ys3"],
  broadcast_where: [
    "c", "a", "b", "y", ...DIMS4, "cs0", "cs1", "cs2", "cs3", "as0", "as1", "as2", "as3", "bs0", "bs1", "bs2", "bs3",
  ],
  unary_forward: ["op", "x", "y", "n", "p0", "p1"],
  unary_backward: ["op", "x", "y", "dy", "dx", "n", "p0", "p1"],
  reduce_axis: ["op", "x", "y", "indices", "outer", "size", "inner", "stride", "divisor"],
  scatter_axis: ["dy", "indices", "dx", "outer", "size", "inner", "stride"],
  fill: ["y", "n", "value"],
  copy: ["x", "y", "n"],
  axpy: ["n", "alpha", "x", "y"],
  scale: ["x", "y", "n", "alpha"],
  dropout_forward: ["x", "y", "mask", "n", "p", "key", "counter"],
  random_uniform: ["y", "n", "lo", "hi", "key", "counter"],
  random_normal: ["y", "n", "mean", "std", "key", "counter"],
  random_bernoulli: ["y", "n", "p", "key", "counter"],
  maxpool_forward: ["x", "y", "argmax", ...POOL],
  maxpool_backward: ["dy", "argmax", "dx", "N", "C", "H", "W", "OH", "OW"],
  avgpool_forward: ["x", "y", ...POOL, "countIncludePad"],
  avgpool_backward: ["dy", "dx", ...POOL, "countIncludePad"],
  softmax_xent_forward: ["logits", "labels", "losses", "N", "C", "smoothing"],
  softmax_xent_backward: ["logits", "labels", "dlogits", "N", "C", "smoothing", "alpha", "scale"],
  sgd_update: ["p", "g", "buf", "n", "lr", "momentum", "dampening", "weightDecay", "nesterov", "firstStep"],
} as const;

export type KernelName = keyof typeof KERNEL_ABI;

/** A tuple of `number` as long as the tuple `P`. */
type Numbers<P extends readonly unknown[]> = { [I in keyof P]: number };

/** The arguments of kernel `K`, one number per parameter of the list. */
export type KernelArgs<K extends KernelName> = Numbers<typeof KERNEL_ABI[K]>;

/** The module's exports, typed from the list (the kernels that return a value return a number). */
export type Kernels = { [K in KernelName]: (...args: KernelArgs<K>) => number };

/** Every kernel may be split over threads (workers index this list), in the list's order. */
export const KERNEL_NAMES = Object.keys(KERNEL_ABI) as KernelName[];

/** The instance's exports as `Kernels`, once each is checked to exist with the listed arity. */
export function checkKernelExports(exports: WebAssembly.Exports): Kernels {
  for (const name of KERNEL_NAMES) {
    const fn = exports[name];
    const params = KERNEL_ABI[name].length;
    if (typeof fn !== "function" || fn.length !== params) {
      const got = typeof fn === "function" ? `${fn.length} parameters` : "no such export";
      throw new Error(`wasm kernels: ${name} should take ${params} parameters (${KERNEL_ABI[name].join(", ")}); the module has ${got}. Rebuild with npm run build.`);
    }
  }
  return exports as unknown as Kernels;
}
