/**
 * VGG-11/13/16 (Simonyan & Zisserman 2015) for small images. `features` follows
 * torchvision's configuration lists and indices exactly (ReLU and MaxPool take indices too,
 * and convs keep their bias even before BatchNorm, as torchvision's do), so the
 * `features.*` keys of vgg11/13/16 and their `_bn` versions load from torchvision
 * unchanged. The head is NOT torchvision's (7×7 adaptive pool, two 4096-wide layers,
 * ~120M parameters, meant for 224×224 ImageNet): it is global average pooling and
 * Linear(512, 512) → ReLU → Dropout(0.5) → Linear(512, numClasses), so `classifier.*`
 * keys do not match torchvision's. `widthMultiplier` scales every conv and the hidden layer.
 * `normalization` may put Santurkar et al.'s ℓp normalisation (../lp_norm.ts) where BatchNorm
 * goes, under the same keys. For images smaller than 32 px (28×28 Fashion-MNIST) `imageSize`
 * leaves out the final max-pool, which would shrink a 1×1 map to nothing; it is the layout's
 * last entry, so no layer's index changes.
 */
import { ShapeError } from "../../errors.ts";
import type { Tensor } from "../../tensor.ts";
import { flatten } from "../../ops/shape.ts";
import { fmt } from "../../ops/util.ts";
import { Module } from "../module.ts";
import { LpNorm2d } from "../lp_norm.ts";
import { BatchNorm2d, Conv2d, Dropout, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential } from "../layers.ts";
import { constant_, normal_ } from "../init.ts";
import { initConvNet } from "./common.ts";
import { chain, type Step, stepOf } from "../chain.ts";
import { bool, checkOptionKeys, oneOf, positiveInt, scaleWidth, widthMultiplier } from "../checks.ts";

/** What follows each conv before its ReLU: nothing, BatchNorm, or ℓ1/ℓ2/ℓ∞ normalisation. */
export type VGGNormalization = "none" | "batch" | "l1" | "l2" | "linf";
export const VGG_NORMALIZATIONS: readonly VGGNormalization[] = ["none", "batch", "l1", "l2", "linf"];

export interface VGGOptions {
  /** BatchNorm after every conv (torchvision's vgg*_bn). Default false. */
  batchNorm?: boolean;
  /** The layer after every conv (default "batch" with batchNorm, else "none"); overrides batchNorm. */
  normalization?: VGGNormalization;
  /** Height (= width) of the input images, when known: below 32 px the final max-pool is left out. */
  imageSize?: number;
  /** Output classes (default 10). */
  numClasses?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Scales every conv's channels and the hidden width, rounded, at least 1 (default 1). */
  widthMultiplier?: number;
}

/** A conv's output channels, or "M" for a 2×2 max-pool: torchvision's cfgs "A", "B", "D". */
type Layout = readonly (number | "M")[];

const VGG11: Layout = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"];
const VGG13: Layout = [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"];
const VGG16: Layout = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"];

const OPTION_KEYS = ["batchNorm", "normalization", "imageSize", "numClasses", "inChannels", "widthMultiplier"] as const;
const HIDDEN = 512;

function normLayer(kind: VGGNormalization, width: number): Module | null {
  if (kind === "batch") return new BatchNorm2d(width);
  if (kind === "none") return null;
  return new LpNorm2d(width, kind === "l1" ? 1 : kind === "l2" ? 2 : Infinity);
}

/** `layout` without its final max-pool when that pool would halve a 1×1 map (images below 2^pools px). */
function fitLayout(layout: Layout, imageSize: number | undefined): Layout {
  const pools = layout.filter((e) => e === "M").length;
  return imageSize !== undefined && imageSize < 2 ** pools && layout[layout.length - 1] === "M" ? layout.slice(0, -1) : layout;
}

/** torchvision's make_layers: conv3×3 (pad 1) [→ norm] → ReLU per number, MaxPool2d(2, 2) per "M". */
function makeFeatures(
  layout: Layout, inChannels: number, normalization: VGGNormalization, multiplier: number,
): { features: Sequential; outChannels: number; pools: number } {
  const layers: Module[] = [];
  let channels = inChannels;
  let pools = 0;
  for (const entry of layout) {
    if (entry === "M") {
      layers.push(new MaxPool2d(2, 2));
      pools++;
      continue;
    }
    const width = scaleWidth(entry, multiplier);
    layers.push(new Conv2d(channels, width, 3, { padding: 1 }));
    const norm = normLayer(normalization, width);
    if (norm) layers.push(norm);
    layers.push(new ReLU());
    channels = width;
  }
  return { features: new Sequential(...layers), outChannels: channels, pools };
}

export class VGG extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;
  /** Max-pools in `features`: each halves H and W (rounding down). */
  private readonly pools: number;
  private readonly steps: Step[];

  constructor(layout: Layout, opts: VGGOptions = {}, where = "VGG") {
    super();
    const batchNorm = bool(where, "batchNorm", opts.batchNorm ?? false);
    const normalization = oneOf(where, "normalization", opts.normalization ?? (batchNorm ? "batch" : "none"), VGG_NORMALIZATIONS);
    const imageSize = opts.imageSize === undefined ? undefined : positiveInt(where, "imageSize", opts.imageSize);
    const numClasses = positiveInt(where, "numClasses", opts.numClasses ?? 10);
    const inChannels = positiveInt(where, "inChannels", opts.inChannels ?? 3);
    const multiplier = widthMultiplier(where, opts.widthMultiplier ?? 1);
    const built = makeFeatures(fitLayout(layout, imageSize), inChannels, normalization, multiplier);
    const hidden = scaleWidth(HIDDEN, multiplier);
    this.pools = built.pools;
    this.features = this.module("features", built.features);
    const avgpool = this.module("avgpool", new GlobalAvgPool2d());
    this.classifier = this.module("classifier", new Sequential(
      new Linear(built.outChannels, hidden), new ReLU(), new Dropout(0.5), new Linear(hidden, numClasses),
    ));
    this.steps = [stepOf(this.features), stepOf(avgpool), flatten, stepOf(this.classifier)];

    // torchvision's VGG init: convs He-normal (fan_out) with zero bias, BN γ=1 β=0,
    // linears N(0, 0.01) with zero bias.
    initConvNet(this, { zeroConvBias: true });
    for (const [, m] of this.classifier.namedModules()) {
      if (m instanceof Linear) {
        normal_(m.weight, 0, 0.01);
        if (m.bias) constant_(m.bias, 0);
      }
    }
  }

  forward(x: Tensor): Tensor {
    // Checked up front: otherwise the failure surfaces deep inside features as a max-pool
    // that "does not fit" some intermediate shape the caller never saw.
    const smallest = 2 ** this.pools;
    if (x.rank !== 4 || x.shape[2] < smallest || x.shape[3] < smallest) {
      throw new ShapeError(
        `VGG: input must be [N, C, H, W] with H and W at least ${smallest} (${this.pools} 2×2 max-pools), got ${fmt(x.shape)}`,
      );
    }
    return chain(x, this.steps);
  }
}

function build(name: string, layout: Layout, opts: VGGOptions | undefined): VGG {
  return new VGG(layout, checkOptionKeys(name, opts, OPTION_KEYS), name);
}

export function vgg11(opts?: VGGOptions): VGG {
  return build("vgg11", VGG11, opts);
}
export function vgg13(opts?: VGGOptions): VGG {
  return build("vgg13", VGG13, opts);
}
export function vgg16(opts?: VGGOptions): VGG {
  return build("vgg16", VGG16, opts);
}
