/**
 * jax-js reference for bench/throughput.ts's WebGPU bench (--vs-jaxjs): jax-js (the JavaScript
 * peer issue #19 measures us against, pinned as a dev dependency of the bench only; retrograd
 * never imports it, and this file loads it only when called, so the bundled bench runs without
 * it) on its own WebGPU device in the same process, on the same adapter: matmul n³ GFLOP/s and
 * a CIFAR ResNet's training step and inference images/s.
 *
 * The network is retrograd's, not a look-alike: its parameters and BatchNorm statistics are
 * copied from a retrograd model's state dict (`weightsOf`), and the forward pass walks the same
 * names (conv1/bn1, layerS.B.{conv1,bn1,conv2,bn2}, the 1×1 projection shortcut
 * layerS.B.downsample.{0,1} where a block changes shape, fc), so every layer shape is retrograd's
 * by construction; a model it would run differently is refused (`notUnderstood`), and
 * test/jaxjs_ref.test.ts checks that both compute the same numbers.
 *
 * Written as a jax-js user would write it, so the peer is not handicapped: pure functions of a
 * parameter tree, the whole training step (forward, cross-entropy, valueAndGrad, the SGD update
 * with momentum and weight decay, the BatchNorm running statistics) under one jit, inference
 * under another, arrays passed by ownership (`.ref` where a value is used twice). Timed like
 * ours: warm-up of at least a second and two calls (compilation of the jit and its shaders),
 * then the median of repeats, each awaiting blockUntilReady, which submits the queued kernels
 * and waits for the GPU to finish them.
 */
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Array as JaxArray, Device } from "@jax-js/jax";
import type * as rg from "../src/mod.ts";
import { ValueError } from "../src/errors.ts";

type Jax = typeof import("@jax-js/jax");
type Params = Record<string, JaxArray>;
/** Named tensors as plain data, the form in which weights cross from retrograd to jax-js. */
export type Values = Record<string, { shape: number[]; values: Float32Array }>;
export type Weights = { params: Values; stats: Values };

/** retrograd's (and PyTorch's) BatchNorm. */
const BN_EPS = 1e-5, BN_MOMENTUM = 0.1;
export interface SgdOptions { lr: number; momentum: number; weightDecay: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The installed jax-js's version (its package.json is not in its exports map). */
export function jaxjsVersion(): string {
  const entry = createRequire(import.meta.url).resolve("@jax-js/jax");
  return (JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as { version: string }).version;
}

/**
 * A retrograd model's parameters and floating-point buffers as plain arrays (the integer
 * num_batches_tracked left out), read from whatever backend holds them.
 */
export async function weightsOf(model: rg.nn.Module): Promise<Weights> {
  const read = async (entries: Iterable<[string, rg.Tensor]>) => {
    const out: Values = {};
    for (const [name, t] of entries) if (t.dtype === "float32") out[name] = { shape: [...t.shape], values: await t.data() };
    return out;
  };
  return { params: await read(model.namedParameters()), stats: await read(model.namedBuffers()) };
}

/** The state-dict names the forward pass understands: a CIFAR-stem ResNet of basic blocks with projection shortcuts. */
const BN = String.raw`\.(weight|bias|running_mean|running_var)`;
const UNDERSTOOD = new RegExp(String.raw`^(conv1\.weight|bn1${BN}|fc\.(weight|bias)|layer\d+\.\d+\.((conv[12]|downsample\.0)\.weight|(bn[12]|downsample\.1)${BN}))$`);

/**
 * Why the forward pass would run the model of `weights` wrong (a bottleneck, an ImageNet stem,
 * no BatchNorm), or null where it runs it as retrograd does.
 */
export function notUnderstood(weights: Weights): string | null {
  const names = [...Object.keys(weights.params), ...Object.keys(weights.stats)];
  const odd = names.find((k) => !UNDERSTOOD.test(k));
  if (odd !== undefined) return `not a CIFAR ResNet of basic blocks: no rule for "${odd}"`;
  const stem = weights.params["conv1.weight"]?.shape;
  return stem?.[2] === 3 && weights.params["bn1.weight"] ? null : `not a CIFAR-stem ResNet (a 3×3 conv1 and bn1): conv1.weight is ${JSON.stringify(stem)}`;
}

/** The blocks of a CIFAR ResNet's state dict in order: "layerS.B" and the stride of its first conv. */
function blocksOf(names: string[]): { prefix: string; stride: number }[] {
  return names.flatMap((k) => {
    const m = /^layer(\d+)\.(\d+)\.conv1\.weight$/.exec(k);
    return m ? [{ prefix: `layer${m[1]}.${m[2]}`, stride: m[1] !== "1" && m[2] === "0" ? 2 : 1, stage: +m[1], block: +m[2] }] : [];
  }).sort((a, b) => a.stage - b.stage || a.block - b.block);
}

/** At least a second and two calls, then the median of `repeats` (seconds), as bench/throughput.ts times. */
async function time(repeats: number, run: () => Promise<void>): Promise<number> {
  const warm = performance.now();
  for (let calls = 0; calls < 2 || performance.now() - warm < 1000; calls++) await run();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await run();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/**
 * Load jax-js, start its `device` backend and make it the default: the ResNet (trained by SGD
 * with `sgd`) and the timed workloads on it, or null where this runtime lacks that device.
 */
export async function loadJaxjs(device: Device, sgd: SgdOptions) {
  const jax = await import("@jax-js/jax");
  if (!(await jax.init(device)).includes(device)) return null;
  jax.defaultDevice(device);
  return workloads(jax, sgd);
}
export type Jaxjs = NonNullable<Awaited<ReturnType<typeof loadJaxjs>>>;

function workloads(jax: Jax, sgd: SgdOptions) {
  const { blockUntilReady, jit, lax, nn, numpy: np, tree, valueAndGrad } = jax;

  const toArrays = (values: Values): Params =>
    Object.fromEntries(Object.entries(values).map(([k, v]) => [k, np.array(v.values, { shape: v.shape })]));

  /** A k×k convolution with "same" padding for odd k, as retrograd's convLayer. */
  function conv(x: JaxArray, w: JaxArray, stride: number): JaxArray {
    const pad = (w.shape[2] - 1) / 2;
    return lax.convGeneralDilated(x, w, [stride, stride], [[pad, pad], [pad, pad]]);
  }

  /**
   * BatchNorm over [N, C, H, W]: batch statistics in training (the running ones updated into
   * `updated` with the unbiased variance, as PyTorch does), running statistics in evaluation.
   */
  function batchNorm(x: JaxArray, p: Params, s: Params, name: string, training: boolean, updated: Params): JaxArray {
    const c = x.shape[1], perChannel = [1, c, 1, 1];
    const gamma = p[`${name}.weight`].reshape(perChannel), beta = p[`${name}.bias`].reshape(perChannel);
    const runningMean = s[`${name}.running_mean`], runningVar = s[`${name}.running_var`];
    if (!training) {
      const scale = gamma.div(np.sqrt(runningVar.reshape(perChannel).add(BN_EPS)));
      return x.sub(runningMean.reshape(perChannel)).mul(scale).add(beta);
    }
    const count = x.size / c;
    const mean = np.mean(x.ref, [0, 2, 3], { keepdims: true });
    const centred = x.sub(mean.ref);
    const variance = np.mean(np.square(centred.ref), [0, 2, 3], { keepdims: true });
    updated[`${name}.running_mean`] = runningMean.mul(1 - BN_MOMENTUM).add(mean.reshape([c]).mul(BN_MOMENTUM));
    updated[`${name}.running_var`] = runningVar.mul(1 - BN_MOMENTUM)
      .add(variance.ref.reshape([c]).mul(BN_MOMENTUM * count / (count - 1)));
    return centred.mul(gamma.div(np.sqrt(variance.add(BN_EPS)))).add(beta);
  }

  /**
   * Logits of the CIFAR ResNet whose parameters are `p` and BatchNorm statistics `s` (both
   * consumed), and in training the updated statistics.
   */
  function forward(p: Params, s: Params, x: JaxArray, training: boolean): [JaxArray, Params] {
    const updated: Params = {};
    const bn = (h: JaxArray, name: string) => batchNorm(h, p, s, name, training, updated);
    let h = nn.relu(bn(conv(x, p["conv1.weight"], 1), "bn1"));
    for (const { prefix, stride } of blocksOf(Object.keys(p))) {
      const first = nn.relu(bn(conv(h.ref, p[`${prefix}.conv1.weight`], stride), `${prefix}.bn1`));
      const branch = bn(conv(first, p[`${prefix}.conv2.weight`], 1), `${prefix}.bn2`);
      const shortcut = `${prefix}.downsample.0.weight` in p
        ? bn(conv(h, p[`${prefix}.downsample.0.weight`], stride), `${prefix}.downsample.1`)
        : h;
      h = nn.relu(branch.add(shortcut));
    }
    const pooled = np.mean(h, [2, 3]);
    return [np.matmul(pooled, np.transpose(p["fc.weight"])).add(p["fc.bias"]), updated];
  }

  /** Mean cross-entropy of the logits against one-hot targets, and the updated statistics. */
  function trainingLoss(p: Params, s: Params, x: JaxArray, oneHot: JaxArray): [JaxArray, Params] {
    const [logits, updated] = forward(p, s, x, true);
    return [np.sum(nn.logSoftmax(logits, -1).mul(oneHot)).mul(-1 / oneHot.shape[0]), updated];
  }

  /**
   * One SGD step as torch.optim.SGD takes it (d = g + wd·p; buf = momentum·buf + d, the buffer
   * starting at zero, which makes the first step's buf = d as PyTorch's; p −= lr·buf), with the
   * loss before it. Everything consumed, everything new returned.
   */
  const trainStep = jit((p: Params, s: Params, buffers: Params, x: JaxArray, oneHot: JaxArray) => {
    const [[loss, stats], grads] = valueAndGrad(trainingLoss, { hasAux: true })(tree.ref(p), s, x, oneHot) as
      unknown as [[JaxArray, Params], Params];
    const params: Params = {}, momentum: Params = {};
    for (const k of Object.keys(p)) {
      const buf = buffers[k].mul(sgd.momentum).add(grads[k].add(p[k].ref.mul(sgd.weightDecay)));
      params[k] = p[k].sub(buf.ref.mul(sgd.lr));
      momentum[k] = buf;
    }
    return { params, stats, momentum, loss };
  });

  const evalLogits = jit((p: Params, s: Params, x: JaxArray) => forward(p, s, x, false)[0]);

  /** retrograd's ResNet on jax-js's default device: training steps and evaluation logits. */
  class JaxResNet {
    private params: Params;
    private stats: Params;
    private momentum: Params;

    constructor(weights: Weights) {
      const why = notUnderstood(weights);
      if (why) throw new ValueError(`jax-js reference: the model is ${why}`);
      this.params = toArrays(weights.params);
      this.stats = toArrays(weights.stats);
      this.momentum = Object.fromEntries(Object.entries(weights.params).map(([k, v]) => [k, np.zeros(v.shape)]));
    }

    /** One SGD step on images x [N, 3, H, W] with one-hot labels; the loss before it (unread). */
    step(x: JaxArray, oneHot: JaxArray): JaxArray {
      const r = trainStep(this.params, this.stats, this.momentum, x.ref, oneHot.ref);
      ({ params: this.params, stats: this.stats, momentum: this.momentum } = r);
      return r.loss;
    }

    /** Logits in evaluation mode (running statistics), the model untouched. */
    logits(x: JaxArray): JaxArray {
      return evalLogits(tree.ref(this.params), tree.ref(this.stats), x.ref);
    }

    /** Wait for everything the model's state depends on. */
    async settle(): Promise<void> {
      await blockUntilReady([this.params, this.stats, this.momentum]);
    }

    dispose(): void {
      tree.dispose([this.params, this.stats, this.momentum]);
    }
  }

  /** Images of `shape` and one-hot labels as jax-js arrays. */
  function batchOf(images: Float32Array, shape: number[], labels: readonly number[], classes: number): { x: JaxArray; oneHot: JaxArray } {
    const hot = new Float32Array(labels.length * classes);
    labels.forEach((label, i) => { hot[i * classes + label] = 1; });
    return { x: np.array(images, { shape }), oneHot: np.array(hot, { shape: [labels.length, classes] }) };
  }

  const matmul = jit((a: JaxArray, b: JaxArray) => np.matmul(a, b));

  return {
    JaxResNet,
    batchOf,

    /** The adapter jax-js's WebGPU device runs on, described as retrograd describes its own (undefined where the runtime does not say). */
    adapter(): string | undefined {
      const info = (jax.getWebGPUDevice() as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
      return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || undefined;
    },

    /** Matmul n³ GFLOP/s for each size, as bench/throughput.ts's sgemm (20 repeats at n ≤ 256). */
    async matmulGflops(sizes: readonly number[], repeats: number): Promise<Record<string, number>> {
      const gflops: Record<string, number> = {};
      for (const n of sizes) {
        const [a, b] = [0, 1].map((seed) => np.array(Float32Array.from({ length: n * n }, (_, i) => Math.sin(i + seed)), { shape: [n, n] }));
        const seconds = await time(n <= 256 ? 20 : repeats, async () => {
          const c = matmul(a.ref, b.ref);
          await c.blockUntilReady();
          c.dispose();
        });
        gflops[String(n)] = (2 * n ** 3) / seconds / 1e9;
        a.dispose();
        b.dispose();
      }
      return gflops;
    },

    /**
     * The ResNet of `weights` (the initial ones of bench/throughput.ts's model) on a batch of
     * 3×32×32 images: training step images/s, then inference images/s in evaluation mode.
     */
    async resnet(weights: Weights, batch: number, repeats: number): Promise<{ trainImagesPerSec: number; inferImagesPerSec: number }> {
      const images = Float32Array.from({ length: batch * 3 * 32 * 32 }, (_, i) => Math.sin(0.37 * i));
      const { x, oneHot } = batchOf(images, [batch, 3, 32, 32], Array.from({ length: batch }, (_, i) => i % 10), 10);
      const model = new JaxResNet(weights);
      const trainSeconds = await time(repeats, async () => {
        model.step(x, oneHot).dispose();
        await model.settle();
      });
      const inferSeconds = await time(repeats, async () => {
        const logits = model.logits(x);
        await logits.blockUntilReady();
        logits.dispose();
      });
      model.dispose();
      x.dispose();
      oneHot.dispose();
      return { trainImagesPerSec: batch / trainSeconds, inferImagesPerSec: batch / inferSeconds };
    },
  };
}
