/**
 * Models by name, for the CLI and the browser demo: `createModel("resnet20", { inChannels: 1,
 * numClasses: 10, imageSize: 28 })`. ResNets of the ImageNet family get the CIFAR stem for
 * small images (≤ 64 px), where the ImageNet stem would shrink a 28×28 input to 7×7 at once.
 * Every model takes the spec's width multiplier, and any model with BatchNorm takes
 * `noisyBatchNorm` (Santurkar et al.'s noise after each BatchNorm, ../batch_norm_noise.ts); the
 * ResNets with BatchNorm take `zca`, ZCA whitening in each BatchNorm's place (../zca.ts). The
 * VGGs come with no normalisation, BatchNorm (`-bn`) or ℓ1/ℓ2/ℓ∞ normalisation (`-l1`, `-l2`,
 * `-linf`), and fit themselves to images below 32 px.
 */
import { ValueError } from "../../errors.ts";
import type { Module } from "../module.ts";
import {
  resnet18, resnet18NoNorm, resnet20, resnet20NoNorm, resnet32, resnet34, resnet50, resnet56, seResnet18, seResnet50,
} from "./resnet.ts";
import { type VGG, type VGGNormalization, type VGGOptions, vgg11, vgg13, vgg16 } from "./vgg.ts";
import { addBatchNormNoise } from "../batch_norm_noise.ts";
import { mlp } from "./mlp.ts";
import { ZCAWhitening2d, type ZCAWhitening2dOptions } from "../zca.ts";

export interface ModelSpec {
  inChannels: number;
  numClasses: number;
  /** Height (= width) of the input images. */
  imageSize: number;
  /** Scales the model's layer widths (default 1: the published architecture). */
  widthMultiplier?: number;
  /** Noise after every BatchNorm in training (default false; a model without BatchNorm refuses it). */
  noisyBatchNorm?: boolean;
  /** ZCA whitening with these options in place of every BatchNorm (ResNets with BatchNorm only; others refuse it). */
  zca?: ZCAWhitening2dOptions;
}

type Factory = (s: ModelSpec) => Module;

const stem = (s: ModelSpec) => (s.imageSize <= 64 ? "cifar" : "imagenet") as "cifar" | "imagenet";
const common = (s: ModelSpec) => ({ inChannels: s.inChannels, numClasses: s.numClasses, widthMultiplier: s.widthMultiplier ?? 1 });
/** A normalised ResNet's options: `common` and, under `zca`, its whitening in BatchNorm's place. */
const resnet = (s: ModelSpec) => ({ ...common(s), ...(s.zca ? { norm: "zca" as const, zca: s.zca } : {}) });

/** name, name-bn, name-l1, name-l2, name-linf: the VGG without normalisation, with BatchNorm, with ℓp normalisation. */
function vggFactories(name: string, make: (opts: VGGOptions) => VGG): Record<string, Factory> {
  const suffixes: [string, VGGNormalization][] = [["", "none"], ["-bn", "batch"], ["-l1", "l1"], ["-l2", "l2"], ["-linf", "linf"]];
  return Object.fromEntries(suffixes.map(([suffix, normalization]) =>
    [name + suffix, (s: ModelSpec) => make({ ...common(s), normalization, imageSize: s.imageSize })]));
}

const FACTORIES: Record<string, Factory> = {
  resnet20: (s) => resnet20(resnet(s)),
  resnet32: (s) => resnet32(resnet(s)),
  resnet56: (s) => resnet56(resnet(s)),
  resnet18: (s) => resnet18({ ...resnet(s), stem: stem(s) }),
  resnet34: (s) => resnet34({ ...resnet(s), stem: stem(s) }),
  resnet50: (s) => resnet50({ ...resnet(s), stem: stem(s) }),
  "se-resnet18": (s) => seResnet18({ ...resnet(s), stem: stem(s) }),
  "se-resnet50": (s) => seResnet50({ ...resnet(s), stem: stem(s) }),
  "resnet18-nonorm": (s) => resnet18NoNorm({ ...common(s), stem: stem(s) }),
  "resnet20-nonorm": (s) => resnet20NoNorm(common(s)),
  ...vggFactories("vgg11", vgg11),
  ...vggFactories("vgg13", vgg13),
  ...vggFactories("vgg16", vgg16),
  mlp: (s) => mlp({ inFeatures: s.inChannels * s.imageSize * s.imageSize, numClasses: s.numClasses, widthMultiplier: s.widthMultiplier ?? 1 }),
};

export const MODEL_NAMES: readonly string[] = Object.keys(FACTORIES);

export function createModel(name: string, spec: ModelSpec): Module {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!factory) throw new ValueError(`unknown model "${name}"; available: ${MODEL_NAMES.join(", ")}`);
  const model = factory(spec);
  if (spec.zca && ![...model.namedModules()].some(([, m]) => m instanceof ZCAWhitening2d)) {
    throw new ValueError(`ZCA whitening replaces a ResNet's BatchNorms; ${name} is not a ResNet with BatchNorm`);
  }
  if (spec.noisyBatchNorm) addBatchNormNoise(model);
  return model;
}
