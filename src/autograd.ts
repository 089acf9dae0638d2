/**
 * The tape. Each differentiable op that sees an input requiring grad records a Node: its
 * inputs, the tensors its backward rule needs (retained, so the user may dispose the
 * forward values), and the rule itself, a closure from the output gradient to the input
 * gradients. The engine walks the nodes in reverse topological order, sums gradients that
 * meet, runs tensor hooks where a gradient is complete (so a hook can replace it before it
 * flows on: the research features hang here), and either accumulates into leaves' `.grad`
 * (`backward()`) or hands the gradients of chosen tensors back without touching any `.grad`
 * (`grad()`, PyTorch's torch.autograd.grad), visiting only the nodes that lead to them.
 *
 * Nodes are reference counted by the handles and nodes that point at them, so a graph
 * that is never backpropagated (evaluation without noGrad) is freed when its tensors are.
 *
 * How a node keeps its saved tensors can be changed for a while with saved-tensor hooks
 * (PyTorch's torch.autograd.graph.saved_tensors_hooks): inside `withSavedTensorHooks`, each
 * tensor an op saves goes through `pack`, and its rule gets it back from `unpack`. The graph
 * itself is recorded as ever, so a backward pass visits the same nodes in the same order; only
 * where the saved values live changes (recomputation keeps none of them: memory/checkpoint.ts).
 */
import { Tensor, empty, type TapeNode, track, untracked } from "./tensor.ts";
import { DisposedError, ShapeError, ValueError } from "./errors.ts";

declare module "./tensor.ts" {
  interface Tensor {
    /** Backpropagate from this tensor (a scalar unless `grad` is given) into the leaves' `.grad`. */
    backward(grad?: Tensor, opts?: BackwardOptions): void;
  }
}

/** Maps the gradient of the node's output to one gradient (or null) per input. */
export type BackwardRule = (grad: Tensor, saved: readonly Tensor[]) => (Tensor | null)[];

/** The node that produced `t`, or null for a leaf (tensor.ts knows nodes only as TapeNode). */
function nodeOf(t: Tensor): Node | null {
  return t.gradFn as Node | null;
}

/**
 * Hooks that decide how tensors saved for backward rules are kept. `pack` sees each tensor an
 * op saves (it must not keep the handle it is given, which the op may dispose) and returns
 * what the node keeps instead; `unpack` gives the tensor back when the rule runs (a handle the
 * hooks own, valid until `release`), possibly more than once with retainGraph; `release` says
 * the node is done with it (its rule ran, or its graph was dropped unrun).
 */
export interface SavedTensorHooks<P = unknown> {
  pack(t: Tensor): P;
  unpack(packed: P): Tensor;
  release(packed: P): void;
}

/** A tensor kept for a backward rule until `release()`. */
export interface SavedTensor {
  get(): Tensor;
  release(): void;
}

/** How the open saved-tensor hooks keep a tensor (null: as a handle of the node's own). */
let packSaved: ((t: Tensor) => SavedTensor) | null = null;

/**
 * Run `fn` with the tensors that ops save for their backward rules going through `hooks`
 * (null: kept as handles, the default). Scopes nest; the innermost one wins.
 */
export function withSavedTensorHooks<T, P>(hooks: SavedTensorHooks<P> | null, fn: () => T): T {
  const previous = packSaved;
  packSaved = hooks && ((t) => {
    const packed = hooks.pack(t);
    return { get: () => hooks.unpack(packed), release: () => hooks.release(packed) };
  });
  try {
    return fn();
  } finally {
    packSaved = previous;
  }
}

/** Keep `t` for a backward rule as the open saved-tensor hooks say (a handle of its own by default). */
export function saveForBackward(t: Tensor): SavedTensor {
  if (packSaved) return packSaved(t);
  const handle = untracked(() => t.detach());
  return { get: () => handle, release: () => handle.dispose() };
}

export class Node implements TapeNode {
  /** Handles and downstream nodes that point here. */
  private refs = 1;
  private saved: SavedTensor[] | null;
  readonly inputNodes: (Node | null)[];

  constructor(
    readonly name: string,
    readonly inputs: readonly Tensor[],
    saved: readonly Tensor[],
    readonly rule: BackwardRule,
    /** The handle this node produced: where its tensor hooks live. */
    readonly output: Tensor,
  ) {
    this.saved = saved.map(saveForBackward);
    this.inputNodes = inputs.map(nodeOf);
    for (const n of this.inputNodes) n?.incref();
  }

  /** Have the saved tensors been let go (the rule ran without retainGraph, or the graph was dropped)? */
  get released(): boolean {
    return this.saved === null;
  }

  /** The tensors the rule needs (unpacked now, where saved-tensor hooks packed them). */
  savedTensors(): Tensor[] {
    if (!this.saved) throw new DisposedError(`the saved tensors of "${this.name}" were already released`);
    return this.saved.map((s) => s.get());
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
    if (this.saved) for (const s of this.saved) s.release();
    this.saved = null;
  }
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withGradEnabled<T>(on: boolean, fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/** Run `fn` without recording anything on the tape (evaluation, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  return withGradEnabled(false, fn);
}

/** Run `fn` recording on the tape, also inside noGrad (a probe that needs a gradient during evaluation). */
export function enableGrad<T>(fn: () => T): T {
  return withGradEnabled(true, fn);
}

/**
 * Attach a backward rule to `output` if any input needs a gradient. `saved` tensors are
 * retained for the rule and released once it has run (or the graph is dropped).
 */
export function record(
  name: string, output: Tensor, inputs: readonly Tensor[], saved: readonly Tensor[], rule: BackwardRule,
): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return output;
  // The node first, then the mark: saved-tensor hooks then see an op's own output (saved by
  // some rules) as the fresh tensor it is, not as a leaf that requires grad (a parameter).
  output.gradFn = new Node(name, inputs, saved, rule, output);
  output.requiresGrad = true;
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
    a.add_(b);
    b.dispose();
    return a;
  }
  const sum = empty(a.shape, a.backend).copy_(a).add_(b);
  a.dispose();
  b.dispose();
  return sum;
}

function addInto<K>(map: Map<K, Tensor>, key: K, grad: Tensor): void {
  const existing = map.get(key);
  map.set(key, existing ? accumulate(existing, grad) : grad);
}

/** Nodes reachable from `roots`, each after every node that consumes its output. */
function reverseTopologicalOrder(roots: readonly Node[]): Node[] {
  const order: Node[] = [];
  const visited = new Set<Node>();
  for (const root of roots) {
    if (visited.has(root)) continue;
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
  }
  return order.reverse();
}

/** What one run of the engine starts from and what it is after. */
interface Pass {
  /** The tensors to backpropagate from, each with its seed gradient (owned by the pass). */
  roots: { tensor: Tensor; seed: Tensor }[];
  /** Tensors whose gradients to hand back (null: every leaf's, for .grad). */
  targets: ReadonlySet<Tensor> | null;
  /** Keep the saved tensors, so the graph can be backpropagated again. */
  retainGraph: boolean;
  /** Who asked, for messages. */
  caller: string;
}

/**
 * Run the backward pass. Returns the summed, hooked gradient of every leaf reached (targets
 * null) or of every target reached; the caller owns them. Only nodes that lead to a target
 * run their rules.
 */
function propagate(pass: Pass): Map<Tensor, Tensor> {
  return untracked(() => noGrad(() => {
    const pending = new Map<Node, Tensor>();
    const leafGrads = new Map<Tensor, Tensor>();
    const rootNodes: Node[] = [];
    for (const { tensor, seed } of pass.roots) {
      const node = nodeOf(tensor);
      if (node) {
        addInto(pending, node, seed);
        rootNodes.push(node);
      } else {
        addInto(leafGrads, tensor, seed);
      }
    }
    const order = reverseTopologicalOrder(rootNodes);
    const needed = neededNodes(order, pass.targets);
    const captured = new Map<Tensor, Tensor>();
    for (const node of order) {
      let g = pending.get(node);
      if (!g) continue;
      pending.delete(node);
      if (!needed.has(node)) {
        g.dispose();
        continue;
      }
      if (node.released) {
        throw new DisposedError(`${pass.caller}: the graph through "${node.name}" was already freed by an earlier backward pass or dispose() (pass retainGraph to backpropagate twice)`);
      }
      g = applyHooks(node.output, g);
      // A target's gradient is kept: a second handle stops the rule from writing over it.
      if (pass.targets?.has(node.output)) captured.set(node.output, g.detach());
      const inputGrads = node.rule(g, node.savedTensors());
      if (!pass.retainGraph) node.releaseSaved();
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
    for (const [leaf, g] of leafGrads) {
      const hooked = applyHooks(leaf, g);
      if (pass.targets && !pass.targets.has(leaf)) hooked.dispose();
      else captured.set(leaf, hooked);
    }
    return captured;
  }));
}

/** The nodes whose rules must run: all of them for .grad, else those from which a target is reached. */
function neededNodes(order: readonly Node[], targets: ReadonlySet<Tensor> | null): Set<Node> {
  if (!targets) return new Set(order);
  const needed = new Set<Node>();
  // Inputs come after their consumers in `order`, so walking it backwards sees inputs first.
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k];
    const leads = targets.has(node.output) || node.inputs.some((input, i) => {
      const producer = node.inputNodes[i];
      return producer ? needed.has(producer) : targets.has(input);
    });
    if (leads) needed.add(node);
  }
  return needed;
}

/** A seed gradient for `output`: a copy of `given`, or ones for a scalar. */
function seedFor(output: Tensor, given: Tensor | null | undefined, caller: string, index: string): Tensor {
  if (!output.requiresGrad) {
    throw new ValueError(`${caller}: output${index} does not require grad (no input of its graph has requiresGrad)`);
  }
  if (!given) {
    if (output.size !== 1) {
      throw new ShapeError(`${caller}: a gradient must be given for non-scalar output${index} of shape [${output.shape.join(", ")}]`);
    }
    return untracked(() => empty(output.shape, output.backend).fill_(1));
  }
  if (given.size !== output.size) {
    throw new ShapeError(`${caller}: gradient shape [${given.shape.join(", ")}] does not match output${index} shape [${output.shape.join(", ")}]`);
  }
  return untracked(() => empty(output.shape, output.backend).copy_(given));
}

export interface BackwardOptions {
  /** Keep the graph's saved tensors so that it can be backpropagated again. */
  retainGraph?: boolean;
}

/** Backpropagate from `root` and accumulate into every reached leaf's `.grad`. */
export function backward(root: Tensor, grad?: Tensor, opts: BackwardOptions = {}): void {
  const seed = seedFor(root, grad, "backward()", "");
  const leafGrads = propagate({ roots: [{ tensor: root, seed }], targets: null, retainGraph: opts.retainGraph ?? false, caller: "backward()" });
  for (const [leaf, g] of leafGrads) leaf.grad = leaf.grad ? untracked(() => accumulate(leaf.grad!, g)) : g;
}

export interface GradOptions extends BackwardOptions {
  /** The gradient of each output (required for non-scalar outputs; default: 1 for a scalar). */
  gradOutputs?: Tensor | readonly (Tensor | null)[];
  /** Return null for an input the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

/**
 * The gradients of `outputs` with respect to `inputs` (leaves or intermediate tensors), as
 * torch.autograd.grad: no `.grad` is read or written, tensor hooks run as in backward(), and
 * only the part of the graph that leads to the inputs is traversed. The graph is freed unless
 * `retainGraph`. The gradients are new tensors of the caller's (they join an open tidy scope).
 */
export function grad(outputs: Tensor | readonly Tensor[], inputs: readonly Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = outputs instanceof Tensor ? [outputs] : [...outputs];
  const given = opts.gradOutputs instanceof Tensor ? [opts.gradOutputs] : opts.gradOutputs ?? [];
  if (given.length > 0 && given.length !== outs.length) {
    throw new ValueError(`grad(): ${given.length} gradOutputs for ${outs.length} outputs`);
  }
  const targets = new Set(inputs);
  inputs.forEach((t, i) => {
    if (!t.requiresGrad) throw new ValueError(`grad(): input ${i} (${t}) does not require grad`);
  });
  if (targets.size !== inputs.length) throw new ValueError("grad(): an input appears more than once");
  const roots = outs.map((tensor, i) => ({ tensor, seed: seedFor(tensor, given[i], "grad()", outs.length > 1 ? ` ${i}` : "") }));
  const captured = propagate({ roots, targets, retainGraph: opts.retainGraph ?? false, caller: "grad()" });
  return inputs.map((t, i) => {
    const g = captured.get(t);
    if (!g && !opts.allowUnused) {
      for (const other of captured.values()) other.dispose();
      throw new ValueError(`grad(): input ${i} (${t}) is not reached from the outputs (pass allowUnused to get null)`);
    }
    return g ? track(g) : null;
  });
}

Tensor.prototype.backward = function (this: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
  backward(this, grad, opts);
};
