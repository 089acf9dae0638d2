// Entry point of the retrograd WebAssembly kernels: re-exports every exported kernel.
// All pointers are byte offsets into the imported linear memory (env.memory).
export { gemm, gemm_scratch_bytes, set_gemm_scratch } from "./gemm";
export * from "./conv";
export { conv2d_backward_input_winograd, conv2d_backward_weight_winograd, conv2d_forward_winograd, winograd_filters, winograd_weight_output } from "./winograd";
export * from "./norm";
export * from "./elementwise";
export * from "./pool";
export * from "./loss";
export * from "./optim";
export { simd_peak } from "./simd";
export { set_tile_loads, tile_loads } from "./tile";
export { tile_loads_probe } from "./tile_probe";
export { random_uniform, random_normal, random_bernoulli } from "./random";
export * from "./unary";
export * from "./reduce_axis";
