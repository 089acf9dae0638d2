/**
 * Module: a tree of named parameters, buffers and child modules, PyTorch-style. The order
 * in which a module registers things is its state-dict order (own parameters, own buffers,
 * then children), which is PyTorch's, so `stateDict()` keys and order match torch exactly
 * (`layer1.0.conv1.weight`, `bn1.running_mean`, ...) and weights move between the two
 * without conversion.
 *
 * Layers read their tensors by name at run time (`tensor("weight")`), so
 * `functionalCall` (nn/functional_call.ts) can run a module at other parameters by swapping
 * the registered tensors for one call. A child may be registered `inline`: it is a module of
 * its own (addressable, hookable, replaceable, checkpointable) whose contents keep the
 * parent's names, which is how a ResNet has a `stem` and a `head` while its state dict keeps
 * torchvision's `conv1.weight` and `fc.weight`.
 *
 * Hooks: `registerForwardHook` sees (and may replace) a module's output;
 * `registerBackwardHook` sees the gradient at the module's output and input and may replace
 * the input gradient. Both are installed by wrapping this instance's `forward`, so a module
 * without hooks pays nothing and `model.forward(x)` runs every hook in the tree.
 */
import { StateDictError } from "../errors.ts";
import { cloneData, keep, Tensor } from "../tensor.ts";
import { reshape } from "../ops/shape.ts";
import { sameShape } from "../ops/util.ts";
import { isGradEnabled } from "../autograd.ts";

export type StateDict = Map<string, Tensor>;
export type ForwardHook = (module: Module, input: Tensor, output: Tensor) => Tensor | void;
/** gradInput is null when the module's input needs no gradient (the first layer). */
export type BackwardHook = (module: Module, gradInput: Tensor | null, gradOutput: Tensor) => Tensor | void;

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();
  /** Children whose contents keep this module's names (see the file's header). */
  private readonly inlined = new Set<string>();
  private forwardHooks: ForwardHook[] = [];
  private backwardHooks: BackwardHook[] = [];
  private hooksInstalled = false;

  abstract forward(x: Tensor): Tensor;

  /** Register a trainable tensor under `name` (it becomes a leaf with requiresGrad). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t).requireGrad(true);
    this.params.set(name, t);
    return t;
  }

  /** Register persistent state that is not trained (running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, keep(t));
    return t;
  }

  /** This module's own parameter or buffer `name` as it is now (null when it has none of that name). */
  protected tensor(name: string): Tensor | null {
    return this.params.get(name) ?? this.buffers.get(name) ?? null;
  }

  /**
   * Register a child. `inline`: its parameters, buffers and children keep this module's names
   * (it must hold no tensors of its own), so grouping existing layers into a section does not
   * change the state dict.
   */
  protected module<M extends Module>(name: string, m: M, opts: { inline?: boolean } = {}): M {
    if (opts.inline) {
      if (m.params.size > 0 || m.buffers.size > 0) throw new StateDictError(`module "${name}": an inline child may hold no tensors of its own`);
      this.inlined.add(name);
    }
    this.children.set(name, m);
    return m;
  }

  /** A registered child by name (null when there is none). */
  protected child(name: string): Module | null {
    return this.children.get(name) ?? null;
  }

  *namedChildren(): Generator<[string, Module]> {
    yield* this.children;
  }

  /** This module and every descendant by its path; an inline child's contents keep this module's prefix. */
  *namedModules(prefix = ""): Generator<[string, Module]> {
    yield [prefix, this];
    yield* this.namedDescendants(prefix);
  }

  private *namedDescendants(prefix: string): Generator<[string, Module]> {
    for (const [name, child] of this.children) {
      const path = prefix ? `${prefix}.${name}` : name;
      if (this.inlined.has(name)) {
        yield [path, child];
        yield* child.namedDescendants(prefix);
      } else {
        yield* child.namedModules(path);
      }
    }
  }

  /** The module at a dotted path of namedModules() ("" is this one). */
  getModule(path: string): Module {
    for (const [name, m] of this.namedModules()) if (name === path) return m;
    throw new StateDictError(`getModule: no module "${path}"; modules: ${[...this.namedModules()].map(([n]) => n || "(root)").join(", ")}`);
  }

  /**
   * Put `replacement` where the module at `path` is (its registered parent's child of that
   * name), e.g. `model.replaceModule("layer2.0", block)`; the new module's tensors join the
   * state dict and parameters() under the same names. Returns the module replaced.
   */
  replaceModule(path: string, replacement: Module): Module {
    const old = this.getModule(path);
    for (const [, parent] of this.namedModules()) {
      for (const [name, child] of parent.children) {
        if (child !== old) continue;
        parent.children.set(name, replacement);
        parent.childReplaced(name, replacement);
        return old;
      }
    }
    throw new StateDictError(`replaceModule: "${path}" is this module itself`);
  }

  /** Called after replaceModule swapped the child `name`; for modules that keep their children in fields too. */
  protected childReplaced(_name: string, _replacement: Module): void {}

  /**
   * Run `fn` with some of the tree's registered tensors swapped (full names as in stateDict()),
   * then put the originals back, whatever `fn` does. What functionalCall is made of.
   */
  withTensors<T>(replacements: ReadonlyMap<string, Tensor>, fn: () => T): T {
    const owners = new Map<string, [Map<string, Tensor>, string]>();
    for (const [prefix, m] of this.namedModules()) {
      const dot = prefix ? `${prefix}.` : "";
      for (const [store, names] of [[m.params, m.params.keys()], [m.buffers, m.buffers.keys()]] as const) {
        for (const name of names) owners.set(dot + name, [store, name]);
      }
    }
    const unknown = [...replacements.keys()].filter((k) => !owners.has(k));
    if (unknown.length > 0) throw new StateDictError(`functionalCall: unknown keys ${unknown.join(", ")}`, [], unknown);
    const originals: [Map<string, Tensor>, string, Tensor][] = [];
    try {
      for (const [key, t] of replacements) {
        const [store, name] = owners.get(key)!;
        originals.push([store, name, store.get(name)!]);
        store.set(name, t);
      }
      return fn();
    } finally {
      for (const [store, name, t] of originals.reverse()) store.set(name, t);
    }
  }

  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [moduleName, m] of this.namedModules(prefix)) {
      for (const [name, p] of m.params) yield [moduleName ? `${moduleName}.${name}` : name, p];
    }
  }

  *namedBuffers(prefix = ""): Generator<[string, Tensor]> {
    for (const [moduleName, m] of this.namedModules(prefix)) {
      for (const [name, b] of m.buffers) yield [moduleName ? `${moduleName}.${name}` : name, b];
    }
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  /** Every parameter and buffer by its PyTorch name, in PyTorch's order (live tensors). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    const visit = (m: Module, prefix: string) => {
      for (const [name, p] of m.params) sd.set(prefix + name, p);
      for (const [name, b] of m.buffers) sd.set(prefix + name, b);
      for (const [name, child] of m.children) visit(child, m.inlined.has(name) ? prefix : `${prefix}${name}.`);
    };
    visit(this, "");
    return sd;
  }

  /**
   * Copy values from `source` into this module's tensors. Strict by default: missing,
   * unexpected and mis-shaped keys are all listed in one StateDictError. Values that are NaN
   * or ±Infinity are loaded with a warning naming each tensor (console.warn), or refused
   * with a StateDictError under `nonFinite: "error"`; nothing is written when it throws.
   */
  loadStateDict(
    source: StateDict | Record<string, Tensor>, opts: { strict?: boolean; nonFinite?: "warn" | "error" } = {},
  ): void {
    const strict = opts.strict ?? true;
    const incoming = source instanceof Map ? source : new Map(Object.entries(source));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !incoming.has(k));
    const unexpected = [...incoming.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [key, t] of own) {
      const s = incoming.get(key);
      // Exact shapes (a transposed weight has the right size but the wrong layout); a scalar
      // and a one-element vector are interchangeable, as counters come either way.
      const fits = s && (sameShape(s.shape, t.shape) || (s.size === 1 && t.size === 1));
      if (s && !fits) mismatched.push(`${key}: expected [${t.shape.join(", ")}], got [${s.shape.join(", ")}]`);
    }
    const invalid = StateDictError.check("loadStateDict", strict, missing, unexpected, mismatched);
    if (invalid) throw invalid;
    const values = new Map([...own.keys()].filter((k) => incoming.has(k)).map((k) => [k, incoming.get(k)!.dataSync()]));
    const nonFinite = [...values].map(([key, v]) => nonFiniteSummary(key, v)).filter((d) => d !== "");
    if (nonFinite.length > 0) {
      const what = `non-finite values in ${nonFinite.join(", ")}`;
      if (opts.nonFinite === "error") throw new StateDictError(`loadStateDict: ${what}`);
      console.warn(`loadStateDict: warning: ${what}; loaded as they are (pass { nonFinite: "error" } to refuse them)`);
    }
    for (const [key, t] of own) {
      const s = incoming.get(key);
      if (s) t.copy_(s);
    }
    for (const [prefix, m] of this.namedModules()) {
      const dot = prefix ? `${prefix}.` : "";
      m.afterLoad((name) => incoming.get(dot + name));
    }
  }

  /**
   * Called after loadStateDict with the incoming (host-readable) values by local name, for
   * modules that mirror a buffer in JS (reading the incoming tensor, not the device copy).
   */
  protected afterLoad(_loaded: (name: string) => Tensor | undefined): void {}

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Free every parameter, buffer and gradient of the tree. */
  dispose(): void {
    this.zeroGrad();
    for (const [, t] of this.stateDict()) t.dispose();
  }

  registerForwardHook(hook: ForwardHook): { remove(): void } {
    this.installHooks();
    this.forwardHooks.push(hook);
    return { remove: () => void (this.forwardHooks = this.forwardHooks.filter((h) => h !== hook)) };
  }

  registerBackwardHook(hook: BackwardHook): { remove(): void } {
    this.installHooks();
    this.backwardHooks.push(hook);
    return { remove: () => void (this.backwardHooks = this.backwardHooks.filter((h) => h !== hook)) };
  }

  /** Are hooks registered? A fused path that skips this module's forward (BatchNorm → ReLU) runs only when not. */
  get hasHooks(): boolean {
    return this.forwardHooks.length > 0 || this.backwardHooks.length > 0;
  }

  private installHooks(): void {
    if (this.hooksInstalled) return;
    this.hooksInstalled = true;
    const inner = this.forward.bind(this);
    this.forward = (x: Tensor) => this.forwardWithHooks(inner, x);
  }

  private forwardWithHooks(inner: (x: Tensor) => Tensor, x: Tensor): Tensor {
    if (this.backwardHooks.length === 0) return this.runForwardHooks(x, inner(x));
    // Identity views at the input and output give the hooks their places on the tape: the
    // output's hook captures gradOutput, the input's hook (which runs later, once the
    // module's whole backward is done) calls the user hooks and may replace gradInput.
    const input = x.requiresGrad && isGradEnabled() ? reshape(x, x.shape) : x;
    let gradOutput: Tensor | null = null;
    /** Runs the user hooks; returns the replacement gradInput (owned by the tape) if any. */
    const callHooks = (gradInput: Tensor | null): Tensor | undefined => {
      let g = gradInput;
      for (const hook of this.backwardHooks) {
        const replaced = hook(this, g, gradOutput!);
        if (!(replaced instanceof Tensor) || replaced === g) continue;
        if (g && g !== gradInput && g !== gradOutput) g.dispose(); // an earlier hook's replacement
        g = replaced;
      }
      if (gradOutput && gradOutput !== g) gradOutput.dispose();
      gradOutput = null;
      return g && g !== gradInput ? g : undefined;
    };
    if (input !== x) input.registerHook((g) => callHooks(g));
    const y = this.runForwardHooks(input, inner(input));
    const output = reshape(y, y.shape);
    if (input !== x) input.dispose();
    y.dispose();
    if (output.requiresGrad) {
      output.registerHook((g) => {
        gradOutput = cloneData(g);
        if (input === x) callHooks(null)?.dispose(); // no input gradient to replace
      });
    }
    return output;
  }

  private runForwardHooks(input: Tensor, output: Tensor): Tensor {
    for (const hook of this.forwardHooks) {
      const replaced = hook(this, input, output);
      if (replaced instanceof Tensor) output = replaced;
    }
    return output;
  }
}

/** "name (2 NaN, 1 +Infinity)" for a tensor holding non-finite values, "" for a finite one. */
function nonFiniteSummary(name: string, values: Float32Array): string {
  let nan = 0, posInf = 0, negInf = 0;
  for (const v of values) {
    if (v !== v) nan++;
    else if (v === Infinity) posInf++;
    else if (v === -Infinity) negInf++;
  }
  const counts = [[nan, "NaN"], [posInf, "+Infinity"], [negInf, "-Infinity"]].filter(([n]) => n).map(([n, what]) => `${n} ${what}`);
  return counts.length ? `${name} (${counts.join(", ")})` : "";
}
