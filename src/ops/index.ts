/** Every differentiable op, for `import * as ops` and the public API. */
export { add, sub, mul, div, scale, relu, sigmoid } from "./elementwise.ts";
export { matmul, linear } from "./linalg.ts";
export { conv2d, type Conv2dOptions } from "./conv.ts";
export { batchNorm, batchNormRelu, type BatchNormOptions } from "./norm.ts";
export { maxPool2d, avgPool2d, globalAvgPool2d, type Pool2dOptions } from "./pool.ts";
export { reshape, flatten } from "./shape.ts";
export { dropout } from "./dropout.ts";
export { sum, mean } from "./reduce.ts";
export { crossEntropy, type CrossEntropyOptions, type Labels } from "./loss.ts";
