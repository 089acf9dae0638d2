/**
 * The layers of the house, kept by a test. Data flows one way:
 *   cli | web | bench  →  src/mod.ts  →  train/analysis/memory  →  nn/optim/io/data  →  ops
 *     →  tensor/autograd/functional  →  backend  →  errors/random,  and src/backend → assembly | gpu.
 * A file may import from its own layer or a lower one, never a higher one; gpu/ and assembly/
 * import nothing from src/; nothing in src/ imports the command line, the demo, the benches
 * or the tests; the import graph (type imports included) has no cycle; the tensor core does
 * not pull in the CPU backend or its generated kernel module (backends are registered by
 * factories); the CLI bundle does not contain the benchmarks. And src/ uses no runtime API
 * (node:*, Deno.*, DOM), so the same modules run in Node, Deno, browsers and workers.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = `${dir}/${name}`;
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** Code without comments, so a path named in a comment is not an import. */
function code(file: string): string {
  return readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
}

/** "a/b/../c" → "a/c". */
function normalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== ".") out.push(part);
  }
  return out.join("/");
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']/g;

/** Every relative import (static, dynamic with a literal, type-only) of `file`, resolved. */
function importsOf(file: string): string[] {
  const dir = file.slice(0, file.lastIndexOf("/"));
  return [...code(file).matchAll(IMPORT)]
    .map((m) => m[1] ?? m[2] ?? m[3])
    .filter((spec) => spec.startsWith("."))
    .map((spec) => normalise(`${dir}/${spec}`));
}

const files = ["src", "gpu", "assembly", "cli", "bench", "web"].flatMap(sources);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** The layers of src/, lowest first; a path belongs to the first layer with a matching prefix. */
const SRC_LAYERS: string[][] = [
  ["src/errors.ts", "src/random.ts"],
  ["src/backend/"],
  ["src/tensor.ts", "src/autograd.ts", "src/functional.ts"],
  ["src/ops/"],
  ["src/nn/", "src/optim/", "src/io/", "src/data/"],
  ["src/train/", "src/analysis/", "src/memory/"],
  ["src/mod.ts"],
];

function layerOf(path: string): number {
  return SRC_LAYERS.findIndex((prefixes) => prefixes.some((p) => path === p || (p.endsWith("/") && path.startsWith(p))));
}

/** What a file may import, or why not (null: allowed). */
function violation(from: string, to: string): string | null {
  const top = (p: string) => p.split("/")[0];
  if (top(from) === "gpu" && top(to) !== "gpu") return "gpu/ imports only gpu/";
  if (top(from) === "assembly" && top(to) !== "assembly") return "assembly/ imports only assembly/";
  if (top(from) !== "src") return null; // cli, web and bench sit above everything
  if (to === "build/kernels_wasm.ts") return from === "src/backend/cpu/builds.ts" ? null : "only the CPU kernel builds load the kernel module";
  if (["gpu", "assembly"].includes(top(to))) return from.startsWith("src/backend/") ? null : "only src/backend/ talks to the kernels";
  if (top(to) !== "src") return `src/ never imports ${top(to)}/`;
  const [a, b] = [layerOf(from), layerOf(to)];
  if (a < 0 || b < 0) return `${a < 0 ? from : to} is in no layer of SRC_LAYERS`;
  return b > a ? `layer ${a} (${SRC_LAYERS[a].join(" ")}) imports layer ${b} (${SRC_LAYERS[b].join(" ")})` : null;
}

test("imports go down the layers: gpu/ and assembly/ import nothing from src/, src/ nothing from above", () => {
  const offenders: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      const why = violation(from, to);
      if (why) offenders.push(`${from} → ${to}: ${why}`);
    }
  }
  assert.equal(offenders, []);
});

/** The strongly connected components of more than one file (Tarjan), i.e. the import cycles. */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [], found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (g.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

test("the import graph has no cycle (type imports included)", () => {
  assert.equal(cycles(graph), []);
});

/** Every file `root` reaches through imports. */
function closure(root: string): Set<string> {
  const seen = new Set<string>();
  const todo = [root];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...(graph.get(f) ?? []));
  }
  return seen;
}

test("the tensor core and the ops pull in no backend: backends are registered by factories", () => {
  for (const root of ["src/tensor.ts", "src/autograd.ts", "src/ops/index.ts", "src/nn/index.ts"]) {
    const pulled = [...closure(root)].filter((f) =>
      f.startsWith("src/backend/cpu/") || f === "src/backend/webgpu.ts" || f.startsWith("gpu/") || f.startsWith("build/")
    );
    assert.equal(pulled, [], `${root} reaches a backend`);
  }
});

test("the CLI bundle does not contain the benchmarks", () => {
  const bundle = readFileSync("dist/cli.mjs", "utf8");
  const benchOnly = "bench --backend webgpu: no WebGPU adapter in this runtime"; // a message of bench/throughput.ts
  assert.ok(code("bench/throughput.ts").includes(benchOnly), "the marker still names bench code");
  assert.not.ok(bundle.includes(benchOnly), "dist/cli.mjs contains bench/throughput.ts");
});

const forbidden: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: import"],
  [/\bDeno\./, "the Deno namespace"],
  [/\b(document|window)\./, "the DOM"],
  [/\bprocess\.(env|argv|exit|stdout)/, "Node's process"],
  [/\brequire\(/, "require()"],
];

test("src/ uses no runtime-specific API", () => {
  const offenders: string[] = [];
  for (const file of sources("src")) {
    const text = code(file);
    for (const [pattern, what] of forbidden) if (pattern.test(text)) offenders.push(`${file}: ${what}`);
  }
  assert.equal(offenders, []);
});

test.run();
