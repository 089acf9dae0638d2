/** Every differentiable op, for `import * as ops` and the public API; loading it installs the Tensor methods. */
export { add, sub, mul, div, scale, relu, sigmoid } from "./elementwise.ts";
export {
  exp, log, sqrt, rsqrt, abs, sign, neg, square, pow, clamp, floor, round, tanh, type QuantiseOptions,
} from "./unary.ts";
export { maximum, minimum, eq, ne, lt, le, gt, ge, where } from "./compare.ts";
export { matmul, linear } from "./linalg.ts";
export { conv2d, type Conv2dOptions } from "./conv.ts";
export { batchNorm, batchNormRelu, type BatchNormOptions } from "./norm.ts";
export { maxPool2d, avgPool2d, globalAvgPool2d, type Pool2dOptions } from "./pool.ts";
export { reshape, flatten } from "./shape.ts";
export { dropout } from "./dropout.ts";
export { sum, mean, amax, amin, max, min, argmax, argmin, type ValuesAndIndices } from "./reduce.ts";
export { variance, variance as var, std, type VarianceOptions } from "./variance.ts";
export { norm } from "./vector_norm.ts";
export type { Axes } from "./axes.ts";
export type { Operand } from "./scalar.ts";
export { crossEntropy, type CrossEntropyOptions, type Labels } from "./loss.ts";
export { powerGradCrossEntropy } from "./powergrad.ts";
export { eigh, type Eigh, type EighOptions } from "./eigh.ts";
export { ditherGrad, ditherQuantise, ditherStep, type DitherOptions, type DitherRule } from "./dither.ts";
import "./methods.ts";
export { zcaWhiten, zcaWhitenWith, type ZcaOptions, type ZcaStatistics } from "./zca.ts";
