/**
 * Gradient checkpointing, or recomputation (Chen et al. 2016, "Training Deep Nets with
 * Sublinear Memory Cost"): `checkpoint(fn, ...inputs)` runs `fn` keeping none of the tensors
 * its ops save for the backward pass, only its inputs; when the backward pass first needs one
 * of them, `fn` runs again from those inputs and hands over what it saved. This is PyTorch's
 * non-reentrant design: the first run records the graph as ever and only the saved tensors are
 * left out (through saved-tensor hooks), so backward() and rg.grad visit the same nodes in the
 * same order with the same values, and every gradient is bitwise what the same code gives
 * without checkpointing.
 *
 * The second run replays the first: it draws the same random numbers (it runs on the random
 * state the first run started from, and leaves the global stream where it was); BatchNorm
 * normalises by the same batch statistics (same input, same kernels) but moves its running
 * statistics and num_batches_tracked only once (every BatchNorm's statistics are frozen while
 * a replay runs, whichever modules `fn` touches). Tensor hooks and module backward hooks sit on
 * the first run's graph and run once. Forward hooks run in both runs, as in PyTorch: a hook that
 * replaces an output must, or the two runs would differ; one that only observes can skip the
 * replay with `isRecomputing()`. The replay is checked: it must save as many tensors, of the
 * same shapes, reading the same parameters, else a RecomputationError says what differed.
 *
 * Checkpoints nest: a checkpoint's inputs are themselves saved through the enclosing
 * checkpoint's hooks, so an inner segment's inputs are recomputed by the outer one rather than
 * kept (Chen et al.'s recursive scheme).
 */
import {
  enableGrad, isGradEnabled, saveForBackward, type SavedTensor, type SavedTensorHooks, withSavedTensorHooks,
} from "../autograd.ts";
import { DisposedError } from "../errors.ts";
import { getRandomState, type RandomState, withRandomState } from "../random.ts";
import { type Shape, type Tensor, tidy, tracked, untracked } from "../tensor.ts";
import { frozenStatsEverywhere } from "../nn/frozen_stats.ts";
import { RecomputationError } from "./errors.ts";

/** A function of tensors to checkpoint: any ops, modules and hooks. */
export type CheckpointFn = (...inputs: Tensor[]) => Tensor;

/** The same with several outputs (a segment of a graph that hands on more than one tensor). */
export type CheckpointManyFn = (...inputs: Tensor[]) => Tensor[];

/** Replays now running (nested checkpoints recompute inside one another). */
let replaysRunning = 0;

/** Is a checkpointed function being run again (for forward hooks that only observe)? */
export function isRecomputing(): boolean {
  return replaysRunning > 0;
}

/** One tensor the first run saved: its shape, the parameter it was (if one), and its recomputed value. */
interface Slot {
  readonly shape: Shape;
  readonly parameter: Tensor | null;
  value: Tensor | null;
  released: boolean;
}

const fmt = (shape: Shape) => `[${shape.join(", ")}]`;

/** One checkpointed call: its inputs, the random state it started from, and the slots of what it saved. */
class Recomputation implements SavedTensorHooks<number> {
  private readonly slots: Slot[] = [];
  private readonly inputs: SavedTensor[];
  private readonly inputRequiresGrad: boolean[];
  private readonly inputSet: Set<Tensor>;
  private readonly randomState: RandomState = getRandomState();
  /** Slots not yet released; when none are left the inputs are let go. */
  private outstanding = 0;
  private replayed = false;
  private inputsReleased = false;

  constructor(private readonly fn: (...inputs: Tensor[]) => Tensor | Tensor[], inputs: readonly Tensor[]) {
    this.inputs = inputs.map(saveForBackward);
    this.inputRequiresGrad = inputs.map((t) => t.requiresGrad);
    this.inputSet = new Set(inputs);
  }

  pack(t: Tensor): number {
    const parameter = t.isLeaf && t.requiresGrad && !this.inputSet.has(t) ? t : null;
    this.slots.push({ shape: t.shape, parameter, value: null, released: false });
    this.outstanding++;
    return this.slots.length - 1;
  }

  unpack(i: number): Tensor {
    if (!this.replayed) this.replay();
    const value = this.slots[i].value;
    if (!value) throw new DisposedError("checkpoint: a recomputed tensor was used after its backward rule released it");
    return value;
  }

  release(i: number): void {
    const slot = this.slots[i];
    if (slot.released) return;
    slot.value?.dispose();
    slot.value = null;
    slot.released = true;
    if (--this.outstanding === 0) this.releaseInputs();
  }

  /** After the first run: a function that saved nothing (no input needed a gradient) keeps nothing. */
  firstRunDone(): void {
    if (this.outstanding === 0) this.releaseInputs();
  }

  releaseInputs(): void {
    if (this.inputsReleased) return;
    this.inputsReleased = true;
    for (const input of this.inputs) input.release();
  }

  /** Run `fn` again from the inputs, recording, and fill the slots with what it saves. */
  private replay(): void {
    this.replayed = true;
    const captured: Tensor[] = [];
    const capture: SavedTensorHooks<null> = {
      pack: (t) => {
        captured.push(untracked(() => t.detach()));
        const slot = this.slots[captured.length - 1];
        if (slot?.parameter && slot.parameter !== t) {
          throw new RecomputationError(`checkpoint: the recomputation read another tensor ${fmt(t.shape)} where the first run read a parameter ${fmt(slot.parameter.shape)}; were the parameters swapped during the first run (functionalCall)? Put the checkpoint inside the function that swaps them, so that the backward pass runs in the same scope`);
        }
        return null;
      },
      unpack: () => {
        throw new RecomputationError("checkpoint: a recomputed graph was backpropagated");
      },
      release: () => {},
    };
    try {
      tracked(() => tidy(() => {
        const copies = this.inputs.map((saved, i) => saved.get().detach().requireGrad(this.inputRequiresGrad[i]));
        withRandomState(this.randomState, () => frozenStatsEverywhere(() => enableGrad(() => withSavedTensorHooks(capture, () => {
          replaysRunning++;
          try {
            this.fn(...copies);
          } finally {
            replaysRunning--;
          }
        }))));
      }));
      this.check(captured);
    } catch (error) {
      for (const t of captured) t.dispose();
      throw error;
    }
    captured.forEach((t, i) => {
      if (this.slots[i].released) t.dispose();
      else this.slots[i].value = t;
    });
  }

  private check(captured: readonly Tensor[]): void {
    if (captured.length !== this.slots.length) {
      throw new RecomputationError(`checkpoint: the recomputation saved ${captured.length} tensors for the backward pass where the first run saved ${this.slots.length}; the checkpointed function must do the same work when run again (no branching on state that changed in between)`);
    }
    captured.forEach((t, i) => {
      const expected = this.slots[i].shape;
      if (t.shape.length !== expected.length || t.shape.some((d, k) => d !== expected[k])) {
        throw new RecomputationError(`checkpoint: saved tensor ${i} was ${fmt(expected)} in the first run and ${fmt(t.shape)} in the recomputation`);
      }
    });
  }
}

/**
 * `fn(...inputs)`, keeping only `inputs` for the backward pass, which runs `fn` again to get
 * what its ops need (see the file's header). Without gradient recording it is a plain call.
 * The intermediates `fn` makes are freed when it returns, whether or not it disposes them.
 */
export function checkpoint(fn: CheckpointFn, ...inputs: Tensor[]): Tensor {
  return checkpointed(fn, inputs);
}

/**
 * `checkpoint` for a function with several outputs: one replay refills what all of them need
 * (a segment of a graph whose later part reads more than one of its tensors).
 */
export function checkpointMany(fn: CheckpointManyFn, ...inputs: Tensor[]): Tensor[] {
  return checkpointed(fn, inputs);
}

function checkpointed<T extends Tensor | Tensor[]>(fn: (...inputs: Tensor[]) => T, inputs: Tensor[]): T {
  if (!isGradEnabled()) return tidy(() => fn(...inputs));
  const recomputation = new Recomputation(fn, inputs);
  try {
    const output = tidy(() => withSavedTensorHooks(recomputation, () => fn(...inputs)));
    recomputation.firstRunDone();
    return output;
  } catch (error) {
    recomputation.releaseInputs();
    throw error;
  }
}
