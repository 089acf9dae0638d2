/**
 * Shared test helpers: PyTorch fixtures (safetensors written by test/fixtures/gen_fixtures.py)
 * and the deterministic init they start from, closeness assertions that report the worst
 * element (with absolute floors scaled to a tensor's RMS), and a finite-difference gradient
 * check. Tests read files with node:fs, which both Node and Deno provide (tests are not
 * part of the runtime-free core).
 */
import { readFileSync } from "node:fs";
import * as assert from "uvu/assert";
import * as rg from "../src/mod.ts";
import { uniform } from "../src/random.ts";

/** Tests run from the repository root under both runtimes (the Node copies are bundled into build/). */
const fixtureDir = "test/fixtures/";

export interface Fixture {
  get(name: string): rg.Tensor;
  has(name: string): boolean;
  meta(key: string): Record<string, unknown>;
  keys(): string[];
}

export function loadFixture(file: string): Fixture {
  const bytes = new Uint8Array(readFileSync(fixtureDir + file));
  const tensors = rg.io.readSafetensors(bytes, file);
  const metadata = rg.io.readSafetensorsMetadata(bytes, file);
  for (const t of tensors.values()) rg.keep(t);
  return {
    get(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`fixture ${file} has no tensor "${name}"`);
      return t;
    },
    has: (name) => tensors.has(name),
    meta: (key) => JSON.parse(metadata[key] ?? "{}"),
    keys: () => [...tensors.keys()],
  };
}

/**
 * The fixtures' deterministic init (gen_fixtures.py: formula_init), rebuilt here: each
 * state-dict entry k gets values from uniform(k, i), so Python and TypeScript start from
 * bit-identical weights without an init file.
 */
export function formulaInit(model: rg.nn.Module): void {
  const sd = model.stateDict();
  let lastWeightFanIn = 1;
  [...sd].forEach(([name, t], k) => {
    const leafName = name.split(".").pop()!;
    const owner = name.slice(0, name.length - leafName.length);
    const isNorm = sd.has(`${owner}running_mean`);
    let f: (u: number) => number;
    if (leafName === "running_mean") f = (u) => 0.1 * (2 * u - 1);
    else if (leafName === "running_var") f = (u) => 0.5 + u;
    else if (leafName === "num_batches_tracked") f = () => 0;
    else if (isNorm && leafName === "weight") f = (u) => 1 + 0.2 * (2 * u - 1);
    else if (isNorm && leafName === "bias") f = (u) => 0.1 * (2 * u - 1);
    else if (t.rank >= 2) {
      lastWeightFanIn = t.size / t.shape[0];
      const bound = Math.sqrt(6 / lastWeightFanIn);
      f = (u) => bound * (2 * u - 1);
    } else {
      const bound = 1 / Math.sqrt(lastWeightFanIn);
      f = (u) => bound * (2 * u - 1);
    }
    const v = new Float32Array(t.size);
    for (let i = 0; i < v.length; i++) v[i] = f(uniform(k, i));
    t.backend.write(t.buffer, v);
  });
}

export function values(x: rg.Tensor | ArrayLike<number>): ArrayLike<number> {
  return x instanceof rg.Tensor ? x.dataSync() : x;
}

/**
 * Assert |actual − expected| ≤ atol + rtol·|expected| elementwise, and where expected is NaN
 * or ±Infinity, that actual is the same; the failure message names the label, the worst
 * index and both values.
 */
export function assertClose(
  actual: rg.Tensor | ArrayLike<number>, expected: rg.Tensor | ArrayLike<number>,
  label: string, { rtol = 1e-4, atol = 1e-5 } = {},
): void {
  const a = values(actual);
  const e = values(expected);
  assert.is(a.length, e.length, `${label}: length ${a.length} vs expected ${e.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const excess = Number.isFinite(e[i])
      ? Math.abs(a[i] - e[i]) - (atol + rtol * Math.abs(e[i]))
      : Object.is(a[i], e[i]) ? 0 : Infinity;
    if (!(excess <= worstExcess)) {
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.unreachable(`${label}: element ${worst} is ${a[worst]}, expected ${e[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Absolute tolerance floor: a small fraction of the tensor's typical magnitude. */
export function tolFor(expected: ArrayLike<number>, rtol = 1e-3): { rtol: number; atol: number } {
  let s = 0;
  for (let i = 0; i < expected.length; i++) s += expected[i] * expected[i];
  return { rtol, atol: Math.max(1e-6, 1e-3 * Math.sqrt(s / Math.max(1, expected.length))) };
}

export function assertShape(t: rg.Tensor, shape: readonly number[], label: string): void {
  assert.equal([...t.shape], [...shape], `${label}: shape`);
}

/** A leaf that requires grad, holding a fixture's values. */
export function leaf(t: rg.Tensor): rg.Tensor {
  return rg.tensor(t.dataSync(), t.shape).requireGrad();
}

/**
 * Finite-difference check of d(Σ f(inputs)·w)/d inputs for a fixed random w, against the
 * analytic gradients from backward(). The projection sum is accumulated in float64 from the
 * float32 outputs; central differences with step h. Every element is checked.
 */
export function gradcheck(
  label: string, f: (inputs: rg.Tensor[]) => rg.Tensor, inputs: rg.Tensor[],
  { h = 1e-2, rtol = 5e-3, atol = 1e-3 } = {},
): void {
  const probe = rg.noGrad(() => f(inputs));
  const w = rg.randn(probe.shape).dataSync();
  probe.dispose();
  const objective = (xs: rg.Tensor[]) =>
    rg.noGrad(() => {
      const y = f(xs).dataSync();
      let s = 0;
      for (let i = 0; i < y.length; i++) s += y[i] * w[i];
      return s;
    });

  const leaves = inputs.map((x) => rg.tensor(x.dataSync(), x.shape).requireGrad());
  const y = f(leaves);
  y.backward(rg.tensor(w, y.shape));
  leaves.forEach((x, k) => {
    const analytic = x.grad!.dataSync();
    const base = x.dataSync();
    const numeric = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const perturbed = (delta: number) => {
        const v = Float32Array.from(base);
        v[i] += delta;
        const xs = inputs.map((orig, j) => (j === k ? rg.tensor(v, x.shape) : orig));
        const s = objective(xs);
        xs[k].dispose();
        return s;
      };
      numeric[i] = (perturbed(h) - perturbed(-h)) / (2 * h);
    }
    assertClose(analytic, numeric, `${label}: d/d input ${k}`, { rtol, atol });
  });
}

/**
 * `steps` seeded SGD steps (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4) of `model` on
 * (x, labels), recorded by name: each step's logits, loss and gradients, then the state dict.
 * For bitwise comparisons of two ways to compute the same training.
 */
export function recordSteps(model: rg.nn.Module, x: rg.Tensor, labels: number[], steps = 2): [string, Float32Array][] {
  const opt = new rg.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true });
  const out: [string, Float32Array][] = [];
  for (let step = 0; step < steps; step++) {
    rg.tidy(() => {
      opt.zeroGrad();
      const logits = model.forward(x);
      const loss = rg.crossEntropy(logits, labels);
      loss.backward();
      out.push([`logits ${step}`, logits.dataSync()], [`loss ${step}`, loss.dataSync()]);
      for (const [name, p] of model.namedParameters()) if (p.grad) out.push([`grad ${name} ${step}`, p.grad.dataSync()]);
      opt.step();
    });
  }
  for (const [name, t] of model.stateDict()) out.push([name, t.dataSync()]);
  for (const buffer of opt.stateDict().values()) buffer.dispose();
  return out;
}
