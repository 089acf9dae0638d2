/**
 * Residual networks (He et al. 2016) with torchvision's module names, registration order and
 * initialisation, so a torchvision (or torchvision-style CIFAR) state dict loads unchanged:
 * ImageNet ResNet-18/34/50, the CIFAR ResNet-20/32/56 (3×3 stem, three stages of 16/32/64
 * channels, projection shortcuts as torchvision uses), and two variants for experiments:
 * squeeze-and-excitation blocks (Hu et al. 2018) and a normalisation-free ResNet that still
 * trains because each residual branch starts switched off (SkipInit, De & Smith 2020). A
 * width multiplier scales every stage, for capacity sweeps.
 */
import { ValueError } from "../../errors.ts";
import { type Tensor, zeros } from "../../tensor.ts";
import { add, mul, relu, sigmoid } from "../../ops/elementwise.ts";
import { globalAvgPool2d } from "../../ops/pool.ts";
import { flatten } from "../../ops/shape.ts";
import { Module } from "../module.ts";
import { ZCAWhitening2d, type ZCAWhitening2dOptions } from "../zca.ts";
import { BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential } from "../layers.ts";
import { constant_ } from "../init.ts";
import { bnRelu, initConvNet } from "./common.ts";
import { chain, type Step, stepOf } from "../chain.ts";
import { bool, checkOptionKeys, oneOf, positiveInt, positiveIntList, scaleWidth, widthMultiplier } from "../checks.ts";

export type ResNetNorm = "batch" | "none" | "zca";

/** The layer a normalised ResNet puts after each convolution. */
type NormLayer = BatchNorm2d | ZCAWhitening2d;
export type ResNetStem = "imagenet" | "cifar";

/** What a user may choose when calling a factory such as `resnet18(opts)`. */
export interface ResNetOptions {
  /** Output classes (default 1000 for the ImageNet family, 10 for ResNet-20/32/56). */
  numClasses?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** "imagenet": 7×7/2 conv and 3×3/2 max-pool; "cifar": one 3×3/1 conv, no pooling. */
  stem?: ResNetStem;
  /** Zero the last BatchNorm γ of every block, so each block starts as the identity (torchvision's zero_init_residual). */
  zeroInitResidual?: boolean;
  /**
   * "batch" (default); "none" drops every BatchNorm and gates each residual branch with a
   * learnable `skip_gain`; "zca" puts ZCA whitening of groups of channels (../zca.ts, Wang et
   * al. 2019) where each BatchNorm was.
   */
  norm?: ResNetNorm;
  /** The ZCA layers' options under norm "zca" (group size, ε, the eigendecomposition's backward). */
  zca?: ZCAWhitening2dOptions;
  /** Squeeze-and-excitation in every block. */
  se?: boolean;
  /**
   * Scales every stage's width, rounded, at least 1 (default 1): ResNet-20 at 0.25 has 4/8/16
   * channels. The state-dict names do not change, only the shapes.
   */
  widthMultiplier?: number;
}

/** A full architecture for `new ResNet(config)`: the options plus the block type and stage layout. */
export interface ResNetConfig extends ResNetOptions {
  block: "basic" | "bottleneck";
  /** Blocks in each stage; stage i > 0 halves the resolution in its first block. */
  blocksPerStage: readonly number[];
  /** Base width (planes) of each stage; a bottleneck stage outputs 4× this. */
  widths: readonly number[];
}

const OPTION_KEYS = ["numClasses", "inChannels", "stem", "zeroInitResidual", "norm", "zca", "se", "widthMultiplier"] as const;

const NORMS = ["batch", "none", "zca"] as const;

/** The normalisation layer of `norm` over `channels` (null for "none"). */
function normLayer(norm: ResNetNorm, channels: number, zca: ZCAWhitening2dOptions | undefined): NormLayer | null {
  if (norm === "none") return null;
  return norm === "batch" ? new BatchNorm2d(channels) : new ZCAWhitening2d(channels, zca);
}

/** A k×k convolution that keeps the resolution at stride 1 ("same" padding for odd k). */
function convLayer(inChannels: number, outChannels: number, kernel: number, stride: number, bias: boolean): Conv2d {
  return new Conv2d(inChannels, outChannels, kernel, { stride, padding: (kernel - 1) / 2, bias });
}

/**
 * Squeeze-and-excitation: rescales each channel by a gate computed from the whole plane,
 * x · sigmoid(fc2(relu(fc1(mean over H×W of x))))). fc1/fc2 are 1×1 convolutions with bias
 * (named as torchvision.ops.SqueezeExcitation names them), the hidden width
 * max(8, channels / reduction) so narrow CIFAR stages keep a usable bottleneck.
 */
export class SqueezeExcitation extends Module {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  private readonly gate: Step[];
  constructor(readonly channels: number, reduction = 16) {
    super();
    positiveInt("SqueezeExcitation", "channels", channels);
    positiveInt("SqueezeExcitation", "reduction", reduction);
    const hidden = Math.max(8, Math.floor(channels / reduction));
    this.fc1 = this.module("fc1", new Conv2d(channels, hidden, 1));
    this.fc2 = this.module("fc2", new Conv2d(hidden, channels, 1));
    this.gate = [globalAvgPool2d, stepOf(this.fc1), relu, stepOf(this.fc2), sigmoid];
  }
  forward(x: Tensor): Tensor {
    const gate = chain(x, this.gate);
    const out = mul(x, gate); // [N, C, H, W] · [N, C, 1, 1]
    gate.dispose();
    return out;
  }
}

/** Per-block choices the ResNet passes down. */
export interface BlockOptions {
  norm?: ResNetNorm;
  zca?: ZCAWhitening2dOptions;
  se?: boolean;
}

interface ConvSpec {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
}

/**
 * What BasicBlock and Bottleneck share: a branch of convolutions (conv1, bn1, conv2, bn2, …
 * with ReLU between, none after the last), optional SE, and a shortcut that is the input
 * itself or, when the stride or channel count changes, a 1×1 projection `downsample`;
 * out = relu(shortcut(x) + branch(x)).
 *
 * Each BatchNorm runs fused with what follows it (common.ts bnRelu): the ReLU inside the
 * branch, and for the last one, unless SE comes between, the shortcut add and the final ReLU.
 *
 * Registration order is torchvision's (convs and norms interleaved, then downsample); `se`
 * sits before downsample, as in timm's SE-ResNets. Without normalisation the branch is
 * scaled by `skip_gain` (shape [1], initialised to 0), registered last. Note that PyTorch
 * (and Module.stateDict) list a module's own parameters before its children, so its key
 * `layerI.J.skip_gain` still comes first among the block's keys.
 */
export abstract class ResidualBlock extends Module {
  readonly convs: Conv2d[] = [];
  /** The branch's normalisation layers in order (empty when norm is "none"). */
  readonly norms: NormLayer[] = [];
  readonly se: SqueezeExcitation | null;
  readonly downsample: Sequential | null;

  /** The branch up to its last convolution, or to its end where `tail` is null, by name. */
  private readonly branch: [string, Step][] = [];
  /** The last normalisation layer, run with the shortcut add and the ReLU (null: SE or no norm). */
  private readonly tail: NormLayer | null;

  protected constructor(where: string, specs: readonly ConvSpec[], opts: BlockOptions) {
    super();
    const norm = oneOf(where, "norm", opts.norm ?? "batch", NORMS);
    const normalised = norm !== "none";
    const withSe = bool(where, "se", opts.se ?? false);
    specs.forEach((spec, i) => {
      positiveInt(where, "stride", spec.stride);
      // A conv followed by BatchNorm needs no bias: BN's β replaces it.
      const conv = this.module(`conv${i + 1}`, convLayer(spec.inChannels, spec.outChannels, spec.kernel, spec.stride, !normalised));
      this.convs.push(conv);
      this.branch.push([`conv${i + 1}`, stepOf(conv)]);
      const last = i === specs.length - 1;
      const layer = normLayer(norm, spec.outChannels, opts.zca);
      if (layer) {
        const bn = this.module(`bn${i + 1}`, layer);
        this.norms.push(bn);
        if (!last) this.branch.push([`bn${i + 1}+relu`, (t) => bnRelu(bn, t)]);
        else if (withSe) this.branch.push([`bn${i + 1}`, stepOf(bn)]);
      } else if (!last) {
        this.branch.push([`relu${i + 1}`, relu]);
      }
    });
    this.tail = normalised && !withSe ? this.norms[this.norms.length - 1] : null;

    const inChannels = specs[0].inChannels;
    const outChannels = specs[specs.length - 1].outChannels;
    const stride = specs.reduce((s, spec) => s * spec.stride, 1);
    this.se = withSe ? this.module("se", new SqueezeExcitation(outChannels)) : null;
    if (this.se) this.branch.push(["se", stepOf(this.se)]);

    this.downsample = stride !== 1 || inChannels !== outChannels
      ? this.module("downsample", new Sequential(
        convLayer(inChannels, outChannels, 1, stride, !normalised),
        ...(normalised ? [normLayer(norm, outChannels, opts.zca)!] : []),
      ))
      : null;

    if (!normalised) {
      this.param("skip_gain", zeros([1]));
      this.branch.push(["skip_gain", (t) => mul(t, this.skipGain!)]);
    }
  }

  /** SkipInit's gate on the residual branch; null when the block is normalised. */
  get skipGain(): Tensor | null {
    return this.tensor("skip_gain");
  }

  /** The normalisation layer whose γ zeroInitResidual zeroes (null without normalisation). */
  get lastNorm(): NormLayer | null {
    return this.norms[this.norms.length - 1] ?? null;
  }

  /**
   * The forward pass in parts, for planners that cut inside the block: the branch's steps by
   * name, the shortcut's (none: the input itself), and the join of the two, run in this order.
   */
  parts(): { branch: [string, Step][]; shortcut: [string, Step][]; join: (branch: Tensor, shortcut: Tensor) => Tensor } {
    const shortcut: [string, Step][] = this.downsample
      ? this.downsample.layers.map((m, i) => [`downsample.${i}`, stepOf(m)])
      : [];
    return { branch: [...this.branch], shortcut, join: (b, s) => this.join(b, s) };
  }

  /** relu(shortcut + branch), the last BatchNorm fused in where there is one. */
  private join(branch: Tensor, shortcut: Tensor): Tensor {
    if (this.tail) return bnRelu(this.tail, branch, shortcut);
    const sum = add(shortcut, branch);
    const out = relu(sum);
    sum.dispose();
    return out;
  }

  forward(x: Tensor): Tensor {
    const branch = chain(x, this.branch.map(([, step]) => step));
    const shortcut = this.downsample ? this.downsample.forward(x) : x;
    const out = this.join(branch, shortcut);
    branch.dispose();
    if (shortcut !== x) shortcut.dispose();
    return out;
  }
}

/** Two 3×3 convolutions (ResNet-18/34 and the CIFAR ResNets); stride on the first. */
export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  constructor(inChannels: number, planes: number, stride = 1, opts: BlockOptions = {}) {
    super("BasicBlock", [
      { inChannels, outChannels: planes, kernel: 3, stride },
      { inChannels: planes, outChannels: planes, kernel: 3, stride: 1 },
    ], opts);
  }
}

/**
 * 1×1 reduce, 3×3, 1×1 expand to 4·planes (ResNet-50). The stride is on the 3×3 conv, as in
 * torchvision ("ResNet v1.5").
 */
export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  constructor(inChannels: number, planes: number, stride = 1, opts: BlockOptions = {}) {
    super("Bottleneck", [
      { inChannels, outChannels: planes, kernel: 1, stride: 1 },
      { inChannels: planes, outChannels: planes, kernel: 3, stride },
      { inChannels: planes, outChannels: planes * Bottleneck.expansion, kernel: 1, stride: 1 },
    ], opts);
  }
}

/**
 * The ResNet's stem as a module of its own: conv1, bn1 and relu (run as one fused op until
 * either has a hook, common.ts bnRelu), and maxpool for the ImageNet stem. Registered inline,
 * so its layers keep torchvision's names (conv1.weight, bn1.running_mean).
 */
export class Stem extends Module {
  constructor(inChannels: number, width: number, kind: ResNetStem, norm: ResNetNorm, zca?: ZCAWhitening2dOptions) {
    super();
    const layer = normLayer(norm, width, zca);
    this.module("conv1", kind === "imagenet"
      ? convLayer(inChannels, width, 7, 2, !layer)
      : convLayer(inChannels, width, 3, 1, !layer));
    if (layer) this.module("bn1", layer);
    this.module("relu", new ReLU());
    if (kind === "imagenet") this.module("maxpool", new MaxPool2d(3, 2, 1));
  }
  get conv1(): Conv2d {
    return this.child("conv1") as Conv2d;
  }
  get bn1(): NormLayer | null {
    return this.child("bn1") as NormLayer | null;
  }
  /** Its steps by name, in order (for planners that cut inside it). */
  steps(): [string, Step][] {
    const bn1 = this.bn1, relu = this.child("relu")!, maxpool = this.child("maxpool");
    return [
      ["conv1", stepOf(this.conv1)],
      bn1 ? ["bn1+relu", (t) => bnRelu(bn1, t, null, relu)] : ["relu", stepOf(relu)],
      ...(maxpool ? [["maxpool", stepOf(maxpool)] as [string, Step]] : []),
    ];
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.steps().map(([, step]) => step));
  }
}

/** The ResNet's head as a module of its own: avgpool → flatten → fc, registered inline (fc.weight). */
export class Head extends Module {
  constructor(channels: number, numClasses: number) {
    super();
    this.module("avgpool", new GlobalAvgPool2d());
    this.module("fc", new Linear(channels, numClasses));
  }
  get fc(): Linear {
    return this.child("fc") as Linear;
  }
  forward(x: Tensor): Tensor {
    return chain(x, [stepOf(this.child("avgpool")!), flatten, stepOf(this.fc)]);
  }
}

/**
 * stem → layer1 … layerN → head, each a module (`sequence()` lists them in order, so any part
 * of the chain can be addressed, hooked, checkpointed or replaced). The stem and head are
 * registered inline and relu, maxpool and avgpool are registered like torchvision's (they hold
 * no tensors), so the state dict is torchvision's and hooks reach every layer by its
 * torchvision name, e.g. "avgpool" for features.
 */
export class ResNet extends Module {
  private readonly stageNames: string[] = [];

  /** `where` names the factory in error messages. */
  constructor(config: ResNetConfig, where = "ResNet") {
    super();
    const kind = oneOf(where, "block", config.block, ["basic", "bottleneck"] as const);
    const blocksPerStage = positiveIntList(where, "blocksPerStage", config.blocksPerStage);
    const multiplier = widthMultiplier(where, config.widthMultiplier ?? 1);
    const widths = positiveIntList(where, "widths", config.widths).map((w) => scaleWidth(w, multiplier));
    if (blocksPerStage.length !== widths.length) {
      throw new ValueError(`${where}: blocksPerStage has ${blocksPerStage.length} stages but widths has ${widths.length}`);
    }
    const numClasses = positiveInt(where, "numClasses", config.numClasses ?? 1000);
    const inChannels = positiveInt(where, "inChannels", config.inChannels ?? 3);
    const stem = oneOf(where, "stem", config.stem ?? "imagenet", ["imagenet", "cifar"] as const);
    const norm = oneOf(where, "norm", config.norm ?? "batch", NORMS);
    const se = bool(where, "se", config.se ?? false);
    const zeroInitResidual = bool(where, "zeroInitResidual", config.zeroInitResidual ?? false);

    this.module("stem", new Stem(inChannels, widths[0], stem, norm, config.zca), { inline: true });
    const Block = kind === "basic" ? BasicBlock : Bottleneck;
    let channels = widths[0];
    blocksPerStage.forEach((count, stage) => {
      const stageBlocks: ResidualBlock[] = [];
      for (let i = 0; i < count; i++) {
        const stride = stage > 0 && i === 0 ? 2 : 1;
        stageBlocks.push(new Block(channels, widths[stage], stride, { norm, zca: config.zca, se }));
        channels = widths[stage] * Block.expansion;
      }
      const name = `layer${stage + 1}`;
      this.module(name, new Sequential(...stageBlocks));
      this.stageNames.push(name);
    });
    this.module("head", new Head(channels, numClasses), { inline: true });

    initConvNet(this);
    // Without BatchNorm there is no γ to zero; skip_gain = 0 already starts every block
    // as the identity, so zeroInitResidual has nothing left to do.
    if (zeroInitResidual) for (const block of this.blocks) if (block.lastNorm) constant_(block.lastNorm.weight, 0);
  }

  get stem(): Stem {
    return this.child("stem") as Stem;
  }
  get head(): Head {
    return this.child("head") as Head;
  }
  get conv1(): Conv2d {
    return this.stem.conv1;
  }
  get bn1(): NormLayer | null {
    return this.stem.bn1;
  }
  get fc(): Linear {
    return this.head.fc;
  }
  /** layer1 … layerN. */
  get stages(): Sequential[] {
    return this.stageNames.map((name) => this.child(name) as Sequential);
  }
  /** Every residual block, in order. */
  get blocks(): ResidualBlock[] {
    return this.stages.flatMap((stage) => stage.layers as ResidualBlock[]);
  }
  /** The chain the forward pass runs: stem, the stages, head. */
  sequence(): Module[] {
    return [this.stem, ...this.stages, this.head];
  }

  forward(x: Tensor): Tensor {
    return chain(x, this.sequence().map(stepOf));
  }
}

// ---- factories ----

type Architecture = Pick<ResNetConfig, "block" | "blocksPerStage" | "widths">;
type FamilyDefaults = { numClasses: number; stem: ResNetStem };

const IMAGENET_WIDTHS = [64, 128, 256, 512];
const CIFAR_WIDTHS = [16, 32, 64];
const IMAGENET: FamilyDefaults = { numClasses: 1000, stem: "imagenet" };
const CIFAR: FamilyDefaults = { numClasses: 10, stem: "cifar" };

const RESNET18: Architecture = { block: "basic", blocksPerStage: [2, 2, 2, 2], widths: IMAGENET_WIDTHS };
const RESNET34: Architecture = { block: "basic", blocksPerStage: [3, 4, 6, 3], widths: IMAGENET_WIDTHS };
const RESNET50: Architecture = { block: "bottleneck", blocksPerStage: [3, 4, 6, 3], widths: IMAGENET_WIDTHS };
/** CIFAR ResNet-(6n+2): n basic blocks in each of three stages. */
const cifarResNet = (n: number): Architecture => ({ block: "basic", blocksPerStage: [n, n, n], widths: CIFAR_WIDTHS });

/**
 * Check `opts` for the factory `name` and build the model. Options a variant fixes (`se` for
 * seResnet18, `norm` for resnet18NoNorm) are not accepted from the caller, so a
 * contradiction such as seResnet18({ se: false }) is an error rather than silently ignored.
 */
function build(
  name: string, arch: Architecture, family: FamilyDefaults, opts: ResNetOptions | undefined,
  fixed: Partial<ResNetOptions> = {},
): ResNet {
  const known = OPTION_KEYS.filter((k) => !(k in fixed));
  const o = checkOptionKeys(name, opts, known);
  return new ResNet({
    ...o, ...fixed, ...arch, numClasses: o.numClasses ?? family.numClasses, stem: o.stem ?? family.stem,
  }, name);
}

export function resnet18(opts?: ResNetOptions): ResNet {
  return build("resnet18", RESNET18, IMAGENET, opts);
}
export function resnet34(opts?: ResNetOptions): ResNet {
  return build("resnet34", RESNET34, IMAGENET, opts);
}
export function resnet50(opts?: ResNetOptions): ResNet {
  return build("resnet50", RESNET50, IMAGENET, opts);
}
export function resnet20(opts?: ResNetOptions): ResNet {
  return build("resnet20", cifarResNet(3), CIFAR, opts);
}
export function resnet32(opts?: ResNetOptions): ResNet {
  return build("resnet32", cifarResNet(5), CIFAR, opts);
}
export function resnet56(opts?: ResNetOptions): ResNet {
  return build("resnet56", cifarResNet(9), CIFAR, opts);
}
export function seResnet18(opts?: Omit<ResNetOptions, "se">): ResNet {
  return build("seResnet18", RESNET18, IMAGENET, opts, { se: true });
}
export function seResnet50(opts?: Omit<ResNetOptions, "se">): ResNet {
  return build("seResnet50", RESNET50, IMAGENET, opts, { se: true });
}
/** ResNet-18 without BatchNorm: convs carry biases and each block has a `skip_gain` (SkipInit). */
export function resnet18NoNorm(opts?: Omit<ResNetOptions, "norm">): ResNet {
  return build("resnet18NoNorm", RESNET18, IMAGENET, opts, { norm: "none" });
}
/** ResNet-20 without BatchNorm, the same scheme as resnet18NoNorm: conv biases and a `skip_gain` per block. */
export function resnet20NoNorm(opts?: Omit<ResNetOptions, "norm">): ResNet {
  return build("resnet20NoNorm", cifarResNet(3), CIFAR, opts, { norm: "none" });
}
