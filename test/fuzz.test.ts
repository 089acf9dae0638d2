/**
 * A bounded fuzz test of everything retrograd reads from files: mutated safetensors, IDX
 * files (plain and gzipped), CIFAR files and checkpoints (their metadata and their tensors),
 * through the public readers (readSafetensors and loadStateDict, readIdx and idxDataset,
 * parseCifar and loadDataset, Trainer.resume followed by run()), and from the Node pass
 * through real processes of `retrograd train --resume` and `retrograd eval --weights`.
 * Every case must either load legitimately or raise a RetrogradError subclass: anything
 * else (another exception, a run that goes on past its length, a CLI stack trace, a crash,
 * a hang past 60 s) fails the test, as does memory past the stated bounds (this process's
 * resident size may grow by at most 512 MiB over the run; a CLI process may peak at 1 GiB).
 * The mutations come from src/random.ts with a fixed seed, so every run fuzzes the same
 * cases; the totals are printed.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as rg from "../src/mod.ts";
import { uniform } from "../src/random.ts";

const SEED = 0x5eed;
const PROCESS_GROWTH_BOUND = 512 * 2 ** 20;
const CLI_PEAK_BOUND = 2 ** 30;

/** Deterministic draws for the mutations (src/random.ts's counter-based generator). */
class Draws {
  private counter = 0;
  constructor(private readonly key: number) {}
  next(): number {
    return uniform(this.key, this.counter++);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

type Outcome = "accepted" | "rejected";
const totals = { cases: 0, rejected: 0, accepted: 0, other: [] as string[] };
let peakRss = 0;
const startRss = process.memoryUsage().rss;

/** Run one case: it must load or raise a RetrogradError; anything else is recorded against `what`. */
async function fuzzCase(what: string, load: () => unknown): Promise<void> {
  totals.cases++;
  let outcome: Outcome | string;
  try {
    await load();
    outcome = "accepted";
  } catch (error) {
    outcome = error instanceof rg.RetrogradError ? "rejected" : `${(error as Error)?.constructor?.name}: ${String((error as Error)?.message ?? error).slice(0, 200)}`;
  }
  if (outcome === "accepted") totals.accepted++;
  else if (outcome === "rejected") totals.rejected++;
  else totals.other.push(`${what}: ${outcome}`);
  if (totals.cases % 64 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
}

// ---- byte-level and structure-aware mutations ----

const INTERESTING_WORDS = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 3, 255, 256];

/** One random change to `bytes`: flips, a truncation, an extension, a copied chunk, an interesting word. */
function mutateBytes(bytes: Uint8Array, d: Draws, focus = bytes.length): Uint8Array {
  const out = bytes.slice();
  const at = () => d.int(Math.max(1, Math.min(focus, out.length)));
  switch (d.int(6)) {
    case 0: {
      for (let k = 1 + d.int(8); k > 0; k--) out[at()] = d.int(256);
      return out;
    }
    case 1:
      return out.subarray(0, d.int(out.length + 1));
    case 2: {
      const extra = Uint8Array.from({ length: 1 + d.int(64) }, () => d.int(256));
      const longer = new Uint8Array(out.length + extra.length);
      longer.set(out);
      longer.set(extra, out.length);
      return longer;
    }
    case 3: {
      const from = d.int(out.length), to = d.int(out.length), len = d.int(64);
      out.copyWithin(to, from, from + len);
      return out;
    }
    default: {
      const pos = at();
      const word = d.pick(INTERESTING_WORDS);
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      if (pos + 4 <= out.length) view.setUint32(pos, word, d.int(2) === 0);
      return out;
    }
  }
}

const INTERESTING_JSON: unknown[] = [
  null, -1, 0, 1, -1e6, 1e300, 2 ** 53, 2 ** 32, 0.5, "x", "NaN", "Infinity", "", true, false, [], {}, [1, 2], { a: 1 },
  "__proto__", [-1, 4], [0, 2 ** 40], "F32", "I64", "U8", "BOOL", "F16",
];

/** Paths to every value of a JSON tree ([] is the root). */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (value && typeof value === "object") {
    for (const key of Object.keys(value)) paths((value as Record<string, unknown>)[key], [...prefix, Array.isArray(value) ? Number(key) : key], out);
  }
  return out;
}

/** Where mutateJson puts an array nested 5000 deep: toJson writes it (built as text, no recursion here). */
const DEEP = "\u0000deep\u0000";

/** `value` as JSON text, with DEEP markers as arrays nested 5000 deep. */
function toJson(value: unknown, stringify: (v: unknown) => string = JSON.stringify): string {
  return stringify(value).replaceAll(JSON.stringify(DEEP), "[".repeat(5000) + "]".repeat(5000));
}

/** One change to a JSON tree: a value replaced by an interesting one, deleted, or nested deep. */
function mutateJson(value: unknown, d: Draws): unknown {
  const copy = structuredClone(value);
  const all = paths(copy).filter((p) => p.length > 0);
  if (all.length === 0) return d.pick(INTERESTING_JSON);
  const path = d.pick(all);
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  const kind = d.int(10);
  if (kind === 0 && !Array.isArray(parent)) delete parent[last];
  else if (kind === 1) parent[last] = DEEP;
  else if (kind === 2) parent[last] = "y".repeat(100_000);
  else parent[last] = structuredClone(d.pick(INTERESTING_JSON));
  return copy;
}

/** A safetensors file with its header replaced by `header` (the length prefix kept right, or not). */
function withHeader(bytes: Uint8Array, header: string, fixLength: boolean): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const oldLength = Number(view.getBigUint64(0, true));
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + bytes.length - 8 - oldLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(fixLength ? text.length : oldLength), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + oldLength), 8 + text.length);
  return out;
}

function headerOf(bytes: Uint8Array): unknown {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
}

/** A mutated safetensors file: bytes anywhere, bytes in the header, or a mutated header. */
function mutateSafetensors(bytes: Uint8Array, d: Draws): Uint8Array {
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  switch (d.int(3)) {
    case 0:
      return mutateBytes(bytes, d);
    case 1:
      return mutateBytes(bytes, d, headerEnd);
    default:
      return withHeader(bytes, toJson(mutateJson(headerOf(bytes), d)), d.int(4) > 0);
  }
}

// ---- the files fuzzed ----

/** A small model of every kind of layer the formats carry (conv, batch norm with its counter, linear). */
function smallNet(): rg.nn.Module {
  return new rg.nn.Sequential(
    new rg.nn.Conv2d(1, 2, 3, { padding: 1 }), new rg.nn.BatchNorm2d(2), new rg.nn.ReLU(), new rg.nn.Flatten(), new rg.nn.Linear(32, 3),
  );
}

function idxFile(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((v, i) => new DataView(out.buffer).setUint32(4 + 4 * i, v));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const data = rg.data.synthetic({ n: 24, channels: 1, height: 4, width: 4, classes: 3, seed: 1 });
const testData = rg.data.synthetic({ n: 9, channels: 1, height: 4, width: 4, classes: 3, seed: 1, split: "test" });
const config: rg.train.TrainConfig = {
  epochs: 2, steps: 0, batchSize: 8, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: "cosine",
  warmup: 0, powerGrad: 1, labelSmoothing: 0, seed: 3, shuffle: true, augment: "none", mean: [0.5], std: [0.25], evalBatchSize: 9,
};
/** Steps a run of `config` takes in all (3 batches of 8 per epoch). */
const RUN_STEPS = 6;

/** A checkpoint of a run stopped at step 4 (in its second epoch). */
async function checkpointBytes(): Promise<Uint8Array> {
  rg.manualSeed(config.seed);
  const trainer = new rg.train.Trainer(smallNet(), data, testData, config);
  let bytes: Uint8Array | null = null;
  await trainer.run({ shouldStop: () => trainer.step === 4, onInterrupt: async (c) => void (bytes = await c()) });
  return bytes!;
}

/** Resume from `bytes` and run to the end; a run past its length is a failure (it used to run forever). */
async function resumeAndRun(bytes: Uint8Array): Promise<void> {
  const trainer = new rg.train.Trainer(smallNet(), data, testData, config);
  trainer.resume(bytes, "fuzz.checkpoint");
  let steps = 0;
  await trainer.run({
    onStep: () => {
      if (++steps > RUN_STEPS) throw new Error(`a resumed run went past its ${RUN_STEPS} steps`);
    },
  });
}

/** A checkpoint with its metadata's position or extra JSON mutated (or cut short), tensors intact. */
function mutateCheckpointMetadata(bytes: Uint8Array, d: Draws): Uint8Array {
  const tensors = rg.io.readSafetensors(bytes);
  const meta = { ...rg.io.readSafetensorsMetadata(bytes) };
  const key = d.pick(["position", "extra", "format"]);
  if (key === "format" || d.int(8) === 0) {
    meta[key] = meta[key].slice(0, d.int(meta[key].length));
  } else {
    meta[key] = toJson(mutateJson(rg.io.parseRecord(meta[key]), d), rg.io.stringifyRecord);
  }
  const out = rg.io.writeSafetensors(tensors, meta);
  for (const t of tensors.values()) t.dispose();
  return out;
}

let checkpoint: Uint8Array;
let weights: Uint8Array;

test.before(async () => {
  checkpoint = await checkpointBytes();
  weights = rg.io.writeSafetensors(smallNet().stateDict(), { source: "fuzz" });
});

test("fuzz: safetensors through readSafetensors and a strict loadStateDict", async () => {
  const d = new Draws(SEED);
  for (let i = 0; i < 2500; i++) {
    const bytes = mutateSafetensors(weights, d);
    await fuzzCase(`safetensors #${i}`, () => {
      rg.io.readSafetensorsMetadata(bytes, "fuzz.safetensors");
      const state = rg.io.readSafetensors(bytes, "fuzz.safetensors");
      try {
        smallNet().loadStateDict(state, { nonFinite: "error" });
      } finally {
        for (const t of state.values()) t.dispose();
      }
    });
  }
});

test("fuzz: IDX files, plain and gzipped, through readIdx and idxDataset", async () => {
  const d = new Draws(SEED + 1);
  const images = idxFile([6, 5, 5], Uint8Array.from({ length: 150 }, (_, i) => (i * 37) % 256));
  const labels = idxFile([6], Uint8Array.from([0, 1, 2, 3, 4, 9]));
  for (let i = 0; i < 2400; i++) {
    const which = d.int(2);
    let mutated = mutateBytes(which === 0 ? images : labels, d, 40);
    const gzipped = i % 3 === 0;
    if (gzipped) mutated = d.int(3) === 0 ? mutateBytes(gzipSync(which === 0 ? images : labels), d) : gzipSync(mutated);
    const [imagesFile, labelsFile] = which === 0 ? [mutated, labels] : [images, mutated];
    await fuzzCase(`IDX ${gzipped ? "gzip " : ""}#${i}`, async () => {
      rg.data.idxDataset(await rg.data.readIdx(imagesFile, "fuzz-images"), await rg.data.readIdx(labelsFile, "fuzz-labels"), "fuzz");
    });
  }
});

test("fuzz: CIFAR-10 and CIFAR-100 files through parseCifar, and gzipped through loadDataset", async () => {
  const d = new Draws(SEED + 2);
  for (let i = 0; i < 1200; i++) {
    const variant = d.pick([10, 100] as const);
    const record = variant === 10 ? 3073 : 3074;
    const base = Uint8Array.from({ length: 2 * record }, (_, k) => (k % record === 0 ? k % 10 : (k * 7) % 256));
    const bytes = mutateBytes(base, d, variant === 10 ? 2 * record : 4);
    await fuzzCase(`CIFAR-${variant} #${i}`, () => rg.data.parseCifar(bytes, { variant }, "fuzz.bin"));
  }
  const base = Uint8Array.from({ length: 2 * 3073 }, (_, k) => (k % 3073 === 0 ? 3 : k % 256));
  for (let i = 0; i < 300; i++) {
    const file = d.int(2) === 0 ? mutateBytes(gzipSync(base), d) : gzipSync(mutateBytes(base, d));
    const fs: rg.data.DataFs = {
      exists: async (path) => path.endsWith("test_batch.bin"),
      read: async () => file,
    };
    await fuzzCase(`CIFAR gzip #${i}`, () => rg.data.loadDataset("cifar10", "test", { explicitPath: "/fuzz", systemDir: "/none" }, fs));
  }
});

test("fuzz: checkpoints (metadata and tensors) through Trainer.resume, then a run to the end", async () => {
  const d = new Draws(SEED + 3);
  for (let i = 0; i < 1200; i++) {
    const bytes = d.int(4) === 0 ? mutateSafetensors(checkpoint, d) : mutateCheckpointMetadata(checkpoint, d);
    await fuzzCase(`checkpoint #${i}`, () => resumeAndRun(bytes));
  }
});

// ---- real processes (from the Node pass: it spawns both runtimes) ----

const isDeno = "Deno" in globalThis;

/** Run the CLI; its peak resident size comes from /proc/<pid>/status (VmHWM) while it runs. */
async function cliCase(runtime: "node" | "deno", argv: string[]) {
  const [cmd, args] = runtime === "node" ? ["node", ["dist/cli.mjs", ...argv]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv]];
  const child = spawn(cmd, args);
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  child.stdout.resume();
  let peakKiB = 0;
  const watch = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
    } catch {
      // It has exited.
    }
  }, 25);
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [status, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on("close", (c, s) => resolve([c, s])));
  clearInterval(watch);
  clearTimeout(killer);
  return { status, signal, stderr, peakBytes: peakKiB * 1024 };
}

(isDeno ? test.skip : test)("fuzz: mutated checkpoints through `train --resume`, mutated weights through `eval --weights`, real processes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-fuzz-"));
  try {
    const base = join(dir, "base");
    const made = await cliCase("node", ["train", "--model", "mlp", "--dataset", "synthetic", "--epochs", "2", "--threads", "1", "--out", base]);
    assert.is(made.status, 0, made.stderr);
    const good = new Uint8Array(readFileSync(join(base, "checkpoint.safetensors")));
    const model = new Uint8Array(readFileSync(join(base, "model.safetensors")));
    const config = readFileSync(join(base, "config.json"));
    const d = new Draws(SEED + 4);
    for (let i = 0; i < 10; i++) {
      const runtime = i % 2 === 0 ? "node" : "deno";
      const resume = i < 6;
      let argv: string[];
      if (resume) {
        const run = join(dir, `resume-${i}`);
        const bytes = i % 3 === 2 ? mutateSafetensors(good, d) : mutateCheckpointMetadata(good, d);
        mkdirSync(run);
        writeFileSync(join(run, "config.json"), config);
        writeFileSync(join(run, "checkpoint.safetensors"), bytes);
        argv = ["train", "--resume", run, "--threads", "1"];
      } else {
        const file = join(dir, `weights-${i}.safetensors`);
        writeFileSync(file, mutateSafetensors(model, d));
        argv = ["eval", "--model", "mlp", "--dataset", "synthetic", "--weights", file];
      }
      totals.cases++;
      const r = await cliCase(runtime, argv);
      const command = `${runtime} ${argv.slice(0, 2).join(" ")} (#${i})`;
      // A clean rejection: exit 1 or 2 and one line "retrograd <command>: <what was wrong>", no stack trace.
      const errorLines = r.stderr.split("\n").filter((l) => l.startsWith(`retrograd ${argv[0]}: `));
      if (r.status === 0) totals.accepted++;
      else if ((r.status === 1 || r.status === 2) && errorLines.length === 1 && !/^\s+at /m.test(r.stderr)) totals.rejected++;
      else totals.other.push(`${command}: exit ${r.status} signal ${r.signal}: ${r.stderr.slice(-300)}`);
      assert.ok(r.peakBytes < CLI_PEAK_BOUND, `${command}: peak resident ${(r.peakBytes / 2 ** 20).toFixed(0)} MiB`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fuzz: totals (every case loaded or was a RetrogradError; memory within bounds)", () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const runtime = isDeno ? "deno" : "node";
  console.log(`fuzz (${runtime}): ${totals.cases} cases: ${totals.rejected} clean rejections, ${totals.accepted} legitimate accepts, ` +
    `${totals.other.length} anything else; resident size grew by ${((peakRss - startRss) / 2 ** 20).toFixed(0)} MiB`);
  assert.equal(totals.other, [], "cases that neither loaded nor raised a RetrogradError");
  assert.ok(peakRss - startRss < PROCESS_GROWTH_BOUND, `resident size grew by ${peakRss - startRss} bytes`);
});

test.run();
