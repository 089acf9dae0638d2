/**
 * What the model-zoo files share: BatchNorm → ReLU as one fused op where no hook needs the
 * modules one by one, and torchvision's weight initialisation pass. (Running steps: ../chain.ts;
 * option checks: ../checks.ts.)
 */
import type { Tensor } from "../../tensor.ts";
import { add, relu } from "../../ops/elementwise.ts";
import type { Module } from "../module.ts";
import { BatchNorm2d, Conv2d } from "../layers.ts";
import type { ZCAWhitening2d } from "../zca.ts";
import { constant_, kaimingNormal_ } from "../init.ts";

/**
 * relu(residual + bn(x)), residual optional: BatchNorm2d.forwardRelu's fused op, unless `bn`
 * or `act` (the model's ReLU module, where it has one) has hooks. Then the modules run one
 * after the other, so each hook sees its own module's input, output and gradients. The
 * numbers are the same either way (bitwise on the CPU backend). ZCA whitening in BatchNorm's
 * place (../zca.ts) has no fused op and always runs that way.
 */
export function bnRelu(bn: BatchNorm2d | ZCAWhitening2d, x: Tensor, residual: Tensor | null = null, act: Module | null = null): Tensor {
  if (bn instanceof BatchNorm2d && !bn.hasHooks && !act?.hasHooks) return bn.forwardRelu(x, residual);
  const normalised = bn.forward(x);
  const sum = residual ? add(residual, normalised) : normalised;
  const y = act ? act.forward(sum) : relu(sum);
  normalised.dispose();
  if (sum !== normalised) sum.dispose();
  return y;
}

/**
 * torchvision's init for ReLU convnets: every Conv2d weight He-normal with fan_out, every
 * BatchNorm γ = 1 and β = 0. Conv biases are zeroed only when asked (torchvision's VGG does,
 * its ResNet has no conv biases to touch).
 */
export function initConvNet(model: Module, opts: { zeroConvBias?: boolean } = {}): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d) {
      kaimingNormal_(m.weight, "fanOut");
      if (opts.zeroConvBias && m.bias) constant_(m.bias, 0);
    } else if (m instanceof BatchNorm2d) {
      constant_(m.weight, 1);
      constant_(m.bias, 0);
    }
  }
}
