/**
 * A model's forward pass as a computation graph, for planning recomputation where the chain of
 * blocks is too coarse (Kusumoto et al. 2019, "A Graph Theoretic Framework of Recomputation
 * Algorithms for Memory-Efficient Backpropagation"): each node is one value of the forward pass
 * (the output of one op or module, e.g. a residual block's conv1, its fused bn1+relu, its
 * shortcut's projection, the join of branch and shortcut), with the nodes that produce its
 * inputs, its bytes, the bytes its op keeps for the backward pass besides its inputs and output,
 * and its forward FLOPs. Nodes are listed in the order the forward pass runs them (a
 * topological order); the model's input is node -1, held by the caller throughout.
 *
 * A lower set is a set of nodes closed under predecessors (everything computed before a cut).
 * The family planned over is Kusumoto et al.'s, as their group implemented it: ∅, every node's
 * ancestor set (the node and all it depends on) and V, deduplicated and sorted by size. On a
 * chain these are the prefixes; in a residual block, the ancestor set of a branch node is the
 * graph up to the block's input plus the branch up to that node, whose boundary (the nodes with
 * a successor outside) is that node *and* the block input the shortcut still needs.
 */
import { ValueError } from "../errors.ts";

export interface GraphNode {
  name: string;
  /** The nodes whose values it reads, in argument order (-1: the model's input). */
  inputs: number[];
  /** Bytes of its value (as the allocator counts them). */
  outputBytes: number;
  /** Bytes its recorded op keeps for the backward pass besides its inputs and output. */
  savedBytes: number;
  /** Forward FLOPs: 2·multiply-adds of convolutions and linear layers, plus one per output element. */
  flops: number;
}

export interface ComputationGraph {
  /** In forward order; the last node is the model's output. */
  nodes: GraphNode[];
  /**
   * Bytes no plan changes, held at the backward pass's peak: what is in use when the step starts
   * (parameters, buffers, the batch, an optimiser's state, the kernels' scratch) and the
   * parameters' gradients.
   */
  fixedBytes: number;
  backend: string;
  inputShape: number[];
}

/** A lower set: `members[v]` for each node v, and how many there are. */
export interface LowerSet {
  members: boolean[];
  size: number;
}

/** Check that every node reads only earlier nodes (or the input) and that the graph is not empty. */
export function checkGraph(graph: ComputationGraph): void {
  if (graph.nodes.length === 0) throw new ValueError("computation graph: no nodes");
  graph.nodes.forEach((node, v) => {
    for (const u of node.inputs) {
      if (!Number.isInteger(u) || u < -1 || u >= v) {
        throw new ValueError(`computation graph: node ${v} (${node.name}) reads node ${u}; a node may read only the input (-1) or earlier nodes`);
      }
    }
  });
}

/** successors[v]: the nodes that read v. */
export function successorsOf(graph: ComputationGraph): number[][] {
  const successors: number[][] = graph.nodes.map(() => []);
  graph.nodes.forEach((node, v) => {
    for (const u of new Set(node.inputs)) if (u >= 0) successors[u].push(v);
  });
  return successors;
}

/** v and every node it depends on. */
export function ancestorSet(graph: ComputationGraph, v: number): LowerSet {
  const members = graph.nodes.map(() => false);
  const stack = [v];
  members[v] = true;
  while (stack.length > 0) {
    for (const u of graph.nodes[stack.pop()!].inputs) {
      if (u >= 0 && !members[u]) {
        members[u] = true;
        stack.push(u);
      }
    }
  }
  return { members, size: members.filter(Boolean).length };
}

/** ∅, each node's ancestor set and V, each once, by size (ties in node order). */
export function lowerSetFamily(graph: ComputationGraph): LowerSet[] {
  const n = graph.nodes.length;
  const all: LowerSet[] = [
    { members: new Array<boolean>(n).fill(false), size: 0 },
    ...graph.nodes.map((_, v) => ancestorSet(graph, v)),
    { members: new Array<boolean>(n).fill(true), size: n },
  ];
  const seen = new Set<string>();
  return all.filter((set) => {
    const key = set.members.map((m) => (m ? "1" : "0")).join("");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  }).sort((a, b) => a.size - b.size);
}

/** Is `a` a proper subset of `b`? */
export function properSubset(a: LowerSet, b: LowerSet): boolean {
  return a.size < b.size && a.members.every((m, v) => !m || b.members[v]);
}

/** ∂(L): the nodes of L that a node outside L reads. */
export function boundary(successors: readonly number[][], set: LowerSet): boolean[] {
  return set.members.map((m, v) => m && successors[v].some((w) => !set.members[w]));
}

/** The nodes of `to` not in `from`, in forward order. */
export function difference(from: LowerSet, to: LowerSet): number[] {
  const out: number[] = [];
  to.members.forEach((m, v) => {
    if (m && !from.members[v]) out.push(v);
  });
  return out;
}
