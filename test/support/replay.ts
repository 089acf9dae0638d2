/**
 * What the recomputation tests share: a few SGD steps of a model recorded as bits (each step's
 * loss and every gradient, then every parameter and buffer, and the global random stream's next
 * draws), so a run with checkpointing can be compared bitwise with one without, on any backend.
 * Also the models they train: ResNet-20 (BatchNorm blocks) and a small conv net with dropout.
 */
import * as rg from "../../src/mod.ts";

export async function bits(t: rg.Tensor): Promise<number[]> {
  return [...new Uint32Array((await t.data()).buffer)];
}

export interface RecordedRun {
  losses: number[][];
  /** grads[step][parameter]. */
  grads: number[][][];
  /** Every parameter and buffer after the last step, by state-dict name. */
  state: Map<string, number[]>;
  /** The global random stream's next draws after training. */
  nextDraws: number[];
}

export interface StepsSpec {
  build: () => rg.nn.Module;
  /** The forward pass under test (with or without checkpointing). */
  forward: (model: rg.nn.Module, x: rg.Tensor) => rg.Tensor;
  inputShape: number[];
  labels: number[];
  steps: number;
  seed: number;
}

/** Train `spec.steps` SGD steps (Nesterov momentum, weight decay) on batches drawn from the seeded stream. */
export async function recordSteps(spec: StepsSpec): Promise<RecordedRun> {
  rg.manualSeed(spec.seed);
  const model = spec.build();
  const params = model.parameters();
  const opt = new rg.optim.SGD(params, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const run: RecordedRun = { losses: [], grads: [], state: new Map(), nextDraws: [] };
  for (let step = 0; step < spec.steps; step++) {
    const { x, loss } = rg.tidy(() => {
      opt.zeroGrad();
      const x = rg.randn(spec.inputShape);
      const loss = rg.crossEntropy(spec.forward(model, x), spec.labels);
      loss.backward();
      return { x, loss };
    });
    run.losses.push(await bits(loss));
    const grads: number[][] = [];
    for (const p of params) grads.push(await bits(p.grad!));
    run.grads.push(grads);
    opt.step();
    loss.dispose();
    x.dispose();
  }
  for (const [name, t] of model.stateDict()) run.state.set(name, await bits(t));
  const next = rg.randn([4]);
  run.nextDraws = await bits(next);
  next.dispose();
  model.dispose();
  return run;
}

/**
 * A graph plan (rg.recompute.GraphPlan) of `count` ops in runs of `size`, recomputed and recorded
 * in turn: on a ResNet most runs start or end inside a residual block.
 */
export function stripedGraphPlan(count: number, size: number): rg.recompute.GraphPlan {
  const segments: rg.recompute.GraphSegment[] = [];
  for (let start = 0, k = 0; start < count; start += size, k++) {
    segments.push({ nodes: Array.from({ length: Math.min(size, count - start) }, (_, i) => start + i), recompute: k % 2 === 0 });
  }
  return { segments };
}

/** A small convnet with BatchNorm and dropout, as a Sequential (so it is a chain of blocks). */
export function dropoutNet(): rg.nn.Sequential {
  const { Sequential, Conv2d, BatchNorm2d, ReLU, Dropout, Flatten, Linear, MaxPool2d } = rg.nn;
  return new Sequential(
    new Sequential(new Conv2d(1, 6, 3, { padding: 1, bias: false }), new BatchNorm2d(6), new ReLU(), new Dropout(0.25)),
    new Sequential(new Conv2d(6, 8, 3, { padding: 1 }), new ReLU(), new MaxPool2d(2), new Dropout(0.3)),
    new Sequential(new Flatten(), new Linear(8 * 4 * 4, 24), new ReLU(), new Dropout(0.5)),
    new Linear(24, 5),
  );
}
