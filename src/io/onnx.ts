/**
 * ONNX export for inference: `await rg.io.toOnnx(model, { inputShape: [1, 28, 28] })` gives
 * the bytes of an ONNX model (opset 13, a dynamic batch dimension "N") that computes the
 * model's evaluation-mode forward pass: the ResNets (SE and normalisation-free ones too), VGG,
 * the MLP, and models composed of the same layers. The graph comes from one traced forward pass
 * (onnx_trace.ts); weights are written as float32 initializers under their state-dict names.
 * Each BatchNorm that directly follows a convolution is folded into it by default (W·γ/σ and
 * (b − μ)·γ/σ + β per output channel, σ = √(running_var + eps), computed in float64): one op
 * fewer per layer for the runtime, and the same function up to float32 rounding; with
 * `foldBatchNorm: false` every BatchNorm stays a BatchNormalization node.
 */
import type { Module } from "../nn/module.ts";
import type { Tensor } from "../tensor.ts";
import { ValueError } from "../errors.ts";
import { BATCH_NORM_DEFAULTS } from "../ops/norm.ts";
import { pair } from "../ops/conv.ts";
import { fmt } from "../ops/util.ts";
import {
  AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, Identity, Linear, MaxPool2d, ReLU, Sigmoid,
} from "../nn/layers.ts";
import { SqueezeExcitation } from "../nn/models/resnet.ts";
import { OnnxExportError, type Trace, traceModel, type TracedLayer } from "./onnx_trace.ts";
import type { ModelInit } from "./onnx_encode.ts";

export { OnnxExportError } from "./onnx_trace.ts";

export interface OnnxOptions {
  /** One sample's shape, without the batch dimension: [C, H, W] for a convnet, [features] for an MLP. */
  inputShape: readonly number[];
  /** Fold each BatchNorm that follows a convolution into it (default true). */
  foldBatchNorm?: boolean;
  /** The graph's input and output names (default "input" and "logits"). */
  inputName?: string;
  outputName?: string;
  /** Key-value strings stored in the model (ONNX metadata_props), e.g. the input normalisation. */
  metadata?: Record<string, string>;
}

export const ONNX_OPSET = 13;
/** The IR version that goes with opset 13. */
const IR_VERSION = 7n;

// Values of the schema's enums (onnx_pb.ts), spelled out so this module does not load it.
const FLOAT_TENSOR = 1; // TensorProto.DataType.FLOAT
const INT64_TENSOR = 7; // TensorProto.DataType.INT64
const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const; // AttributeProto.AttributeType

type GraphInit = NonNullable<ModelInit["graph"]>;
type NodeInit = NonNullable<GraphInit["node"]>[number];
type AttributeInit = NonNullable<NodeInit["attribute"]>[number];
type TensorInit = NonNullable<GraphInit["initializer"]>[number];

const ints = (name: string, values: readonly number[]): AttributeInit =>
  ({ name, type: ATTR.INTS, ints: values.map(BigInt) });
const int = (name: string, value: number): AttributeInit => ({ name, type: ATTR.INT, i: BigInt(value) });
const float = (name: string, value: number): AttributeInit => ({ name, type: ATTR.FLOAT, f: value });

function valueInfo(name: string, shape: readonly (number | string)[]) {
  return {
    name,
    type: {
      value: {
        case: "tensorType" as const,
        value: {
          elemType: FLOAT_TENSOR,
          shape: { dim: shape.map((d) => ({ value: typeof d === "string" ? { case: "dimParam" as const, value: d } : { case: "dimValue" as const, value: BigInt(d) } })) },
        },
      },
    },
  };
}

/** Writes the traced graph as ONNX nodes, each value once, in topological order. */
class GraphWriter {
  readonly nodes: NodeInit[] = [];
  readonly initializers: TensorInit[] = [];
  private readonly names = new Map<Tensor, string>();
  private readonly used = new Set<string>();
  private readonly values = new Map<Tensor, Float32Array>();

  constructor(private readonly trace: Trace, private readonly fold: boolean, inputName: string) {
    this.names.set(trace.input, inputName);
    this.used.add(inputName);
  }

  /** Read every model tensor the graph will need once, up front (any backend). */
  async load(): Promise<void> {
    const needed = [...this.trace.names.keys()];
    const data = await Promise.all(needed.map((t) => t.data()));
    needed.forEach((t, i) => this.values.set(t, data[i]));
  }

  private fresh(base: string): string {
    let name = base, i = 1;
    while (this.used.has(name)) name = `${base}_${i++}`;
    this.used.add(name);
    return name;
  }

  private node(opType: string, inputs: string[], outputBase: string, attribute: AttributeInit[] = []): string {
    const output = this.fresh(outputBase || opType);
    this.nodes.push({ opType, input: inputs, output: [output], name: output, attribute });
    return output;
  }

  private constant(base: string, dims: readonly number[], data: Float32Array): string {
    const name = this.fresh(base);
    const raw = new Uint8Array(data.byteLength);
    new Float32Array(raw.buffer).set(data);
    this.initializers.push({ name, dims: dims.map(BigInt), dataType: FLOAT_TENSOR, rawData: raw });
    return name;
  }

  private tensorValues(t: Tensor): Float32Array {
    const v = this.values.get(t);
    if (!v) throw new OnnxExportError(`toOnnx: a tensor of shape ${fmt(t.shape)} is neither computed from the input nor a parameter or buffer of the model`);
    return v;
  }

  /** A model tensor as an initializer under its state-dict name (once). */
  private parameter(t: Tensor): string {
    const known = this.names.get(t);
    if (known) return known;
    const name = this.constant(this.trace.names.get(t)!, t.shape, this.tensorValues(t));
    this.names.set(t, name);
    return name;
  }

  /** The ONNX name of the value `t`, writing whatever computes it first. */
  value(t: Tensor): string {
    const known = this.names.get(t);
    if (known) return known;
    const producer = this.trace.producers.get(t);
    if (!producer) {
      if (this.trace.names.has(t)) return this.parameter(t);
      throw new OnnxExportError(`toOnnx: a value of shape ${fmt(t.shape)} comes from outside the model's input and tensors`);
    }
    const name = producer.kind === "layer"
      ? this.layer(producer.layer, producer.path, producer.input, t)
      : this.op(producer.op, producer.inputs, t);
    this.names.set(t, name);
    return name;
  }

  private layer(layer: TracedLayer, path: string, input: Tensor, output: Tensor): string {
    const where = path || "(model)";
    if (layer instanceof Conv2d) return this.conv(layer, this.value(input), path);
    if (layer instanceof BatchNorm2d) return this.batchNorm(layer, input, path);
    if (layer instanceof Linear) {
      if (input.rank !== 2) throw new OnnxExportError(`toOnnx: ${where}: Linear on a rank-${input.rank} input`);
      const inputs = [this.value(input), this.parameter(layer.weight), ...(layer.bias ? [this.parameter(layer.bias)] : [])];
      return this.node("Gemm", inputs, path, [int("transB", 1)]);
    }
    if (layer instanceof ReLU) return this.node("Relu", [this.value(input)], path);
    if (layer instanceof Sigmoid) return this.node("Sigmoid", [this.value(input)], path);
    if (layer instanceof Dropout || layer instanceof Identity) return this.value(input); // identity in evaluation
    if (layer instanceof Flatten) return this.node("Flatten", [this.value(input)], path, [int("axis", 1)]);
    if (layer instanceof GlobalAvgPool2d) return this.node("GlobalAveragePool", [this.value(input)], path);
    if (layer instanceof MaxPool2d || layer instanceof AvgPool2d) {
      const kernel = pair("pool", "kernel", layer.kernel, 1);
      const stride = pair("pool", "stride", layer.stride ?? layer.kernel, 1);
      const [ph, pw] = pair("pool", "padding", layer.padding, 0);
      const attributes = [ints("kernel_shape", kernel), ints("strides", stride), ints("pads", [ph, pw, ph, pw])];
      return layer instanceof MaxPool2d
        ? this.node("MaxPool", [this.value(input)], path, attributes)
        : this.node("AveragePool", [this.value(input)], path, [...attributes, int("count_include_pad", 1)]);
    }
    if (layer instanceof SqueezeExcitation) {
      const x = this.value(input);
      const squeezed = this.node("GlobalAveragePool", [x], `${path}.pool`);
      const hidden = this.node("Relu", [this.conv(layer.fc1, squeezed, `${path}.fc1`)], `${path}.relu`);
      const gate = this.node("Sigmoid", [this.conv(layer.fc2, hidden, `${path}.fc2`)], `${path}.gate`);
      return this.node("Mul", [x, gate], path);
    }
    throw new OnnxExportError(`toOnnx: ${where}: no ONNX form for ${(layer as Module).constructor.name} (output ${fmt(output.shape)})`);
  }

  private convAttributes(conv: Conv2d): AttributeInit[] {
    const [kh, kw] = conv.weight.shape.slice(2);
    const [ph, pw] = pair("conv2d", "padding", conv.opts.padding ?? 0, 0);
    return [
      ints("kernel_shape", [kh, kw]),
      ints("strides", pair("conv2d", "stride", conv.opts.stride ?? 1, 1)),
      ints("pads", [ph, pw, ph, pw]),
      ints("dilations", pair("conv2d", "dilation", conv.opts.dilation ?? 1, 1)),
      int("group", conv.opts.groups ?? 1),
    ];
  }

  private conv(conv: Conv2d, input: string, path: string): string {
    const inputs = [input, this.parameter(conv.weight), ...(conv.bias ? [this.parameter(conv.bias)] : [])];
    return this.node("Conv", inputs, path, this.convAttributes(conv));
  }

  private batchNorm(bn: BatchNorm2d, input: Tensor, path: string): string {
    const mean = bn.runningMean, variance = bn.runningVar;
    if (!mean || !variance) {
      throw new OnnxExportError(`toOnnx: ${path}: BatchNorm2d without running statistics (trackRunningStats: false) normalises by the batch, which an inference graph cannot`);
    }
    const eps = bn.opts.eps ?? BATCH_NORM_DEFAULTS.eps;
    const producer = this.trace.producers.get(input);
    if (this.fold && producer?.kind === "layer" && producer.layer instanceof Conv2d && this.trace.readers.get(input) === 1) {
      return this.foldedConv(producer.layer, producer.input, bn, eps, path);
    }
    const inputs = [this.value(input), ...[bn.weight, bn.bias, mean, variance].map((t) => this.parameter(t))];
    return this.node("BatchNormalization", inputs, path, [float("epsilon", eps)]);
  }

  /** conv → BatchNorm as one Conv with the normalisation folded into weight and bias. */
  private foldedConv(conv: Conv2d, input: Tensor, bn: BatchNorm2d, eps: number, path: string): string {
    const w = this.tensorValues(conv.weight);
    const gamma = this.tensorValues(bn.weight), beta = this.tensorValues(bn.bias);
    const mean = this.tensorValues(bn.runningMean!), variance = this.tensorValues(bn.runningVar!);
    const bias = conv.bias ? this.tensorValues(conv.bias) : null;
    const channels = conv.weight.shape[0], perChannel = w.length / channels;
    const foldedW = new Float32Array(w.length), foldedB = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const s = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = c * perChannel; i < (c + 1) * perChannel; i++) foldedW[i] = w[i] * s;
      foldedB[c] = ((bias ? bias[c] : 0) - mean[c]) * s + beta[c];
    }
    const convName = this.trace.names.get(conv.weight)!.replace(/\.weight$/, "");
    const inputs = [
      this.value(input),
      this.constant(`${convName}.weight+${path}`, conv.weight.shape, foldedW),
      this.constant(`${convName}.bias+${path}`, [channels], foldedB),
    ];
    return this.node("Conv", inputs, path, this.convAttributes(conv));
  }

  private op(op: string, inputs: readonly Tensor[], output: Tensor): string {
    const binary: Record<string, string> = { add: "Add", sub: "Sub", mul: "Mul", div: "Div" };
    const unary: Record<string, string> = { relu: "Relu", sigmoid: "Sigmoid" };
    if (binary[op]) return this.node(binary[op], inputs.map((t) => this.value(t)), op);
    if (unary[op]) return this.node(unary[op], [this.value(inputs[0])], op);
    if (op === "reshape") {
      const [x] = inputs;
      if (x.shape.join() === output.shape.join()) return this.value(x); // a view, no node
      if (x.shape[0] !== output.shape[0]) {
        throw new OnnxExportError(`toOnnx: reshape ${fmt(x.shape)} → ${fmt(output.shape)} moves the batch dimension`);
      }
      if (output.rank === 2) return this.node("Flatten", [this.value(x)], "flatten", [int("axis", 1)]);
      const shape = this.constantInt64("shape", [0, ...output.shape.slice(1)]);
      return this.node("Reshape", [this.value(x), shape], "reshape");
    }
    throw new OnnxExportError(
      `toOnnx: the op "${op}" (output ${fmt(output.shape)}) runs outside the layers export knows and has no ONNX form here; ` +
        `layers: Conv2d, BatchNorm2d, Linear, ReLU, Sigmoid, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Flatten, Dropout, Identity; ` +
        `between them: add, sub, mul, div, relu, sigmoid, reshape`,
    );
  }

  private constantInt64(base: string, values: readonly number[]): string {
    const name = this.fresh(base);
    this.initializers.push({ name, dims: [BigInt(values.length)], dataType: INT64_TENSOR, int64Data: values.map(BigInt) });
    return name;
  }
}

/** The ONNX bytes of `model`'s evaluation-mode forward pass. */
export async function toOnnx(model: Module, opts: OnnxOptions): Promise<Uint8Array> {
  const inputShape = opts?.inputShape;
  if (!Array.isArray(inputShape) || inputShape.length === 0 || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ValueError(`toOnnx: inputShape must list one sample's positive dimensions (e.g. [1, 28, 28]), got ${JSON.stringify(inputShape)}`);
  }
  const inputName = opts.inputName ?? "input", outputName = opts.outputName ?? "logits";
  const trace = traceModel(model, inputShape);
  try {
    const writer = new GraphWriter(trace, opts.foldBatchNorm ?? true, inputName);
    await writer.load();
    const last = writer.value(trace.output);
    writer.nodes.push({ opType: "Identity", input: [last], output: [outputName], name: outputName });
    const { encodeModel } = await import("./onnx_encode.ts");
    return encodeModel({
      irVersion: IR_VERSION,
      producerName: "retrograd",
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
      opsetImport: [{ domain: "", version: BigInt(ONNX_OPSET) }],
      graph: {
        name: model.constructor.name,
        node: writer.nodes,
        initializer: writer.initializers,
        input: [valueInfo(inputName, ["N", ...inputShape])],
        output: [valueInfo(outputName, ["N", ...trace.output.shape.slice(1)])],
      },
    });
  } finally {
    trace.dispose();
  }
}
