/**
 * The tape. Each differentiable op that sees an input requiring grad records a Node: its
 * inputs, the tensors its backward rule needs (retained, so the user may dispose the
 * forward values), and the rule itself, a closure from the output gradient to the input
 * gradients. backward() walks the nodes in reverse topological order, sums gradients that
 * meet, runs tensor hooks where a gradient is complete (so a hook can replace it before it
 * flows on: the research features hang here), and accumulates into leaves' `.grad`.
 *
 * Nodes are reference counted by the handles and nodes that point at them, so a graph
 * that is never backpropagated (evaluation without noGrad) is freed when its tensors are.
 */
import { Tensor, empty, type TapeNode, untracked } from "./tensor.ts";
import { DisposedError, ShapeError, ValueError } from "./errors.ts";

declare module "./tensor.ts" {
  interface Tensor {
    /** Backpropagate from this tensor (a scalar unless `grad` is given). */
    backward(grad?: Tensor): void;
  }
}

/** Maps the gradient of the node's output to one gradient (or null) per input. */
export type BackwardRule = (grad: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

/** The node that produced `t`, or null for a leaf (tensor.ts knows nodes only as TapeNode). */
function nodeOf(t: Tensor): Node | null {
  return t.gradFn as Node | null;
}

export class Node implements TapeNode {
  /** Handles and downstream nodes that point here. */
  private refs = 1;
  saved: Tensor[] | null;
  readonly inputNodes: (Node | null)[];

  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    saved: readonly Tensor[],
    readonly rule: BackwardRule,
    /** The handle this node produced: where its tensor hooks live. */
    readonly output: Tensor,
  ) {
    this.saved = untracked(() => saved.map((t) => t.detach()));
    this.inputNodes = inputs.map(nodeOf);
    for (const n of this.inputNodes) n?.incref();
  }

  incref(): void {
    this.refs++;
  }

  decref(): void {
    if (--this.refs > 0) return;
    this.releaseSaved();
    for (const n of this.inputNodes) n?.decref();
  }

  releaseSaved(): void {
    if (this.saved) for (const t of this.saved) t.dispose();
    this.saved = null;
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording anything on the tape (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Attach a backward rule to `output` if any input needs a gradient. `saved` tensors are
 * retained for the rule and released once it has run (or the graph is dropped).
 */
export function record(
  name: string, output: Tensor, inputs: readonly Tensor[], saved: readonly Tensor[], rule: BackwardRule,
): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return output;
  output.requiresGrad = true;
  output.gradFn = new Node(name, inputs, saved, rule, output);
  return output;
}

/**
 * Where a backward rule may write an input gradient of `grad`'s shape: over `grad` itself (a
 * new handle on its storage) when no other handle shares it, since backward() frees `grad`
 * after the rule and nobody else can see it; else a fresh tensor. Only for kernels that read
 * each element of `grad` before writing it.
 */
export function gradOrFresh(grad: Tensor): Tensor {
  return grad.storage.refs === 1 ? grad.detach() : empty(grad.shape, grad.backend);
}

function applyHooks(t: Tensor, grad: Tensor): Tensor {
  for (const hook of t.hooks) {
    const replaced = hook(grad);
    if (replaced instanceof Tensor && replaced !== grad) {
      if (replaced.size !== grad.size) {
        throw new ShapeError(`gradient hook returned shape [${replaced.shape.join(", ")}] for a gradient of shape [${grad.shape.join(", ")}]`);
      }
      grad.dispose();
      grad = replaced;
    }
  }
  return grad;
}

/** a += b, in place when `a` owns its storage alone, else into a fresh tensor. */
function accumulate(a: Tensor, b: Tensor): Tensor {
  if (a.storage.refs === 1) {
    a.backend.axpy(1, b.buffer, a.buffer);
    b.dispose();
    return a;
  }
  const sum = empty(a.shape, a.backend);
  a.backend.copy(a.buffer, sum.buffer);
  a.backend.axpy(1, b.buffer, sum.buffer);
  a.dispose();
  b.dispose();
  return sum;
}

function addInto<K>(map: Map<K, Tensor>, key: K, grad: Tensor): void {
  const existing = map.get(key);
  map.set(key, existing ? accumulate(existing, grad) : grad);
}

/** Nodes reachable from `root`, each after every node that consumes its output. */
function reverseTopologicalOrder(root: Node): Node[] {
  const order: Node[] = [];
  const visited = new Set<Node>();
  const stack: [Node, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, next] = top;
    if (next < node.inputNodes.length) {
      top[1]++;
      const child = node.inputNodes[next];
      if (child && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order.reverse();
}

function accumulateLeaf(leaf: Tensor, grad: Tensor): void {
  grad = applyHooks(leaf, grad);
  leaf.grad = leaf.grad ? accumulate(leaf.grad, grad) : grad;
}

export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new ValueError("backward(): tensor does not require grad (no input of its graph has requiresGrad)");
  }
  if (!grad && root.size !== 1) {
    throw new ShapeError(`backward(): a gradient must be given for non-scalar output of shape [${root.shape.join(", ")}]`);
  }
  if (grad && grad.size !== root.size) {
    throw new ShapeError(`backward(): gradient shape [${grad.shape.join(", ")}] does not match output shape [${root.shape.join(", ")}]`);
  }
  untracked(() => {
    const seed = empty(root.shape, root.backend);
    if (grad) seed.backend.copy(grad.buffer, seed.buffer);
    else seed.backend.fill(seed.buffer, 1);
    const rootNode = nodeOf(root);
    if (!rootNode) return noGrad(() => accumulateLeaf(root, seed));

    const pending = new Map<Node, Tensor>([[rootNode, seed]]);
    const leafGrads = new Map<Tensor, Tensor>();
    for (const node of reverseTopologicalOrder(rootNode)) {
      let g = pending.get(node);
      if (!g) continue;
      pending.delete(node);
      if (!node.saved) {
        throw new DisposedError(`backward(): the graph through "${node.name}" was already freed by an earlier backward() or dispose()`);
      }
      const saved = node.saved;
      g = noGrad(() => applyHooks(node.output, g!));
      const inputGrads = noGrad(() => node.rule(g!, saved));
      node.releaseSaved();
      g.dispose();
      node.inputs.forEach((input, i) => {
        const gi = inputGrads[i];
        if (!gi) return;
        if (!input.requiresGrad) return gi.dispose();
        const producer = node.inputNodes[i];
        if (producer) addInto(pending, producer, gi);
        else addInto(leafGrads, input, gi);
      });
    }
    noGrad(() => {
      for (const [leaf, g] of leafGrads) accumulateLeaf(leaf, g);
    });
  });
}

Tensor.prototype.backward = function (this: Tensor, grad?: Tensor): void {
  backward(this, grad);
};
