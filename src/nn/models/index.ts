/**
 * `rg.models`: the model zoo. Every factory takes one options object, checks it (a bad or
 * unknown option is a ValueError) and returns a Module whose state-dict keys and order are
 * torchvision's, so PyTorch checkpoints load without renaming.
 */
export {
  BasicBlock, type BlockOptions, Bottleneck, ResidualBlock, ResNet, type ResNetConfig, type ResNetNorm,
  type ResNetOptions, type ResNetStem, SqueezeExcitation,
  resnet18, resnet20, resnet32, resnet34, resnet50, resnet56, resnet18NoNorm, resnet20NoNorm, seResnet18, seResnet50,
} from "./resnet.ts";
export { VGG, type VGGNormalization, type VGGOptions, VGG_NORMALIZATIONS, vgg11, vgg13, vgg16 } from "./vgg.ts";
export { MLP, type MLPOptions, mlp } from "./mlp.ts";
export { createModel, MODEL_NAMES, type ModelSpec } from "./registry.ts";
