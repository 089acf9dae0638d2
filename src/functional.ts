/**
 * Gradients as functions, for research code that needs them without side effects:
 * `valueAndGrad(fn)` turns a function of tensors into one that also returns the gradient with
 * respect to them (JAX's jax.value_and_grad), on fresh leaves, so no `.grad` anywhere is
 * touched; `customGrad({ forward, backward })` makes an op whose backward rule is the user's
 * own, which may deliberately disagree with the forward's true derivative (PyTorch's
 * autograd.Function, JAX's custom_vjp): the rule runs on the tape like any op's, on every
 * backend, and tensor and module hooks see its gradients as they see any other.
 */
import { enableGrad, grad, noGrad, record } from "./autograd.ts";
import { ShapeError, ValueError } from "./errors.ts";
import { Tensor } from "./tensor.ts";

/** Tensors as a function takes them: one, a list, or a map by name (a state dict). */
export type TensorTree = Tensor | readonly Tensor[] | ReadonlyMap<string, Tensor>;

function leavesOf(tree: TensorTree): Tensor[] {
  return tree instanceof Tensor ? [tree] : tree instanceof Map ? [...tree.values()] : [...tree as readonly Tensor[]];
}

/** `tree` with its tensors replaced, in order, by `values`. */
function rebuild<T extends TensorTree>(tree: T, values: Tensor[]): T {
  if (tree instanceof Tensor) return values[0] as T;
  if (tree instanceof Map) return new Map([...tree.keys()].map((k, i) => [k, values[i]])) as unknown as T;
  return values as unknown as T;
}

/**
 * `fn` with its value and its gradient with respect to its argument: the scalar `value`
 * (outside the graph) and `grads` shaped like the argument. The argument's tensors are read
 * through fresh leaves, so they need not require grad and nothing of theirs (`.grad`, their
 * graph) changes; the gradient is taken where grad recording is on (also inside noGrad).
 */
export function valueAndGrad<T extends TensorTree>(fn: (params: T) => Tensor): (params: T) => { value: Tensor; grads: T } {
  return (params: T) => {
    const leaves = leavesOf(params).map((p) => p.detach().requireGrad());
    try {
      return enableGrad(() => {
        const out = fn(rebuild(params, leaves));
        if (out.size !== 1) throw new ShapeError(`valueAndGrad: fn must return a scalar, got shape [${out.shape.join(", ")}]`);
        const grads = grad(out, leaves, { allowUnused: true }).map((g, i) => g ?? leaves[i].detach().zero_());
        const value = out.detach();
        out.dispose();
        return { value, grads: rebuild(params, grads) };
      });
    } finally {
      for (const leaf of leaves) leaf.dispose();
    }
  };
}

/** A differentiable op given by its forward computation and its own backward rule. */
export interface CustomGrad {
  /** A name for messages and the tape. */
  name?: string;
  /**
   * The forward computation (run without recording): its output, and the tensors the backward
   * rule will need (kept alive until the backward pass, so the caller may dispose its own).
   */
  forward(...inputs: Tensor[]): { output: Tensor; saved?: Tensor[] };
  /**
   * The gradient of each input (null: none) from the output's gradient and the saved tensors,
   * in ordinary ops; new tensors, each of its input's shape.
   */
  backward(gradOutput: Tensor, saved: readonly Tensor[]): (Tensor | null)[];
}

/** An op from `def`: call it like any op; its backward pass runs `def.backward`. */
export function customGrad(def: CustomGrad): (...inputs: Tensor[]) => Tensor {
  const name = def.name ?? "customGrad";
  return (...inputs: Tensor[]) => {
    const { output, saved = [] } = noGrad(() => def.forward(...inputs));
    // record() makes the output a node of the tape: it must be a handle of its own.
    const out = inputs.includes(output) || saved.includes(output) ? output.detach() : output;
    return record(name, out, inputs, saved, (dy, kept) => {
      const grads = def.backward(dy, kept);
      if (grads.length !== inputs.length) {
        throw new ValueError(`${name}: backward returned ${grads.length} gradients for ${inputs.length} inputs`);
      }
      grads.forEach((g, i) => {
        if (g && g.size !== inputs[i].size) {
          throw new ShapeError(`${name}: backward returned shape [${g.shape.join(", ")}] for input ${i} of shape [${inputs[i].shape.join(", ")}]`);
        }
      });
      return grads;
    });
  };
}
