/**
 * The CLI's answers when things go wrong, on real processes under Node (dist/cli.mjs) and
 * Deno (cli/main.ts): a diverging run exits 1 naming the step, keeps its last checkpoint
 * and writes no model; non-finite metrics are written as "NaN"/"Infinity" and read back by
 * `plot`; a run directory is never shared by two runs, a resumed run takes no settings of
 * its own and trusts nothing it reads back (config.json, checkpoint metadata, a torn
 * metrics line, a missing checkpoint, temp files of dead writers); SIGTERM stops a run
 * like Ctrl-C (exit 143, checkpoint, exact resume); bad values and file-system problems are
 * one line naming the flag and the path, never a stack trace or a hang; eval reads only the
 * test split; an empty test split is refused. It spawns both runtimes itself, so it runs
 * once, from the Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";
import { readRun } from "../cli/plot.ts";

const isDeno = "Deno" in globalThis;
if (isDeno) console.log("cli_failures.test: runs from the Node pass (it spawns both runtimes itself)");
const cliTest = isDeno ? test.skip : test;
const RUNTIMES = ["node", "deno"] as const;
type Runtime = typeof RUNTIMES[number];

const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-failures-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function command(runtime: Runtime, argv: string[]): [string, string[]] {
  return runtime === "node" ? ["node", ["dist/cli.mjs", ...argv]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv]];
}

/** Run the CLI to its end: exit status, stdout, stderr. */
function cli(runtime: Runtime, argv: string[], timeout = 300_000) {
  const r = spawnSync(...command(runtime, argv), { encoding: "utf8", timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

/** The run failed with status `status` and a message on stderr matching `pattern`, with no stack trace. */
function failsWith(r: ReturnType<typeof cli>, status: number, pattern: RegExp | string, what: string) {
  assert.is(r.status, status, `${what}: exit status (stderr: ${r.stderr})`);
  assert.match(r.stderr, pattern, what);
  assert.not.match(r.stderr, /^\s+at /m, `${what}: no stack trace:\n${r.stderr}`);
}

const mlp = ["train", "--model", "mlp", "--dataset", "synthetic", "--threads", "1"];

cliTest("a diverging run exits 1 naming the step, epoch and last finite loss; its last checkpoint stays, no model is written", () => {
  for (const runtime of RUNTIMES) {
    const out = join(dir, `diverge-${runtime}`);
    // lr 30 with a constant schedule diverges in the second epoch (16 steps each).
    const r = cli(runtime, [...mlp, "--lr", "30", "--schedule", "constant", "--warmup", "0", "--epochs", "3", "--out", out]);
    failsWith(r, 1, /retrograd train: training diverged at step (\d+) \(epoch 2\): loss \S+, gradient norm \S+; the last finite loss was \S+ \(step \d+\)/, runtime);
    assert.match(r.stderr, `The last checkpoint (${join(out, "checkpoint.safetensors")}) is as it was; no model was written.`);
    assert.not.ok(existsSync(join(out, "model.safetensors")), `${runtime}: no model`);
    const bytes = new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")));
    assert.is(JSON.parse(rg.io.readSafetensorsMetadata(bytes).position).step, 16, `${runtime}: the checkpoint of epoch 1`);
    for (const [name, t] of rg.io.readSafetensors(bytes)) assert.ok(t.dataSync().every(Number.isFinite), `${runtime}: ${name} is finite`);
    const last = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").pop()!;
    assert.match(last, /^\{"type":"diverged","step":\d+,"epoch":2,"lastFiniteLoss":/);
  }
});

cliTest("--on-nonfinite skip trains on, counts the skipped steps, and metrics.jsonl says NaN, which plot reads", () => {
  const out = join(dir, "skip");
  const r = cli("node", [...mlp, "--lr", "1000", "--epochs", "2", "--on-nonfinite", "skip", "--save-every", "1", "--json", "--out", out]);
  assert.is(r.status, 0, r.stderr);
  const summary = rg.io.parseRecord(r.stdout.trim().split("\n").pop()!) as { skippedSteps: number; history: rg.train.EpochRecord[] };
  assert.ok(summary.skippedSteps > 0, `skipped ${summary.skippedSteps}`);
  assert.match(r.stderr, `${summary.skippedSteps} steps skipped`);
  const text = readFileSync(join(out, "metrics.jsonl"), "utf8");
  assert.match(text, /"gradNorm":"Infinity"/);
  assert.match(text, /"trainAccuracy":"NaN"/, "an epoch with every step skipped");
  assert.not.match(text, /null/);
  const lines = text.trim().split("\n").map((l) => rg.io.parseRecord(l) as { type: string; skipped?: boolean; skippedSteps?: number });
  assert.is(lines.filter((l) => l.skipped).length, summary.skippedSteps, "every skipped step has its record");
  assert.equal(lines.filter((l) => l.type === "epoch").map((l) => l.skippedSteps), summary.history.map((h) => h.skippedSteps));
});

cliTest("plot reads non-finite metrics back as numbers", async () => {
  const run = await readRun(join(dir, "skip"));
  assert.ok(run.history.some((h) => Number.isNaN(h.trainLoss)), "a NaN train loss, as a number");
  const r = cli("node", ["plot", join(dir, "skip"), "--out", join(dir, "skip.svg")]);
  assert.is(r.status, 0, r.stderr);
  assert.match(readFileSync(join(dir, "skip.svg"), "utf8"), /^<svg/);
});

cliTest("the synthetic dataset's test split shares the training split's classes: a short run generalises", () => {
  const r = cli("node", [...mlp, "--steps", "30", "--json", "--out", join(dir, "synthetic")]);
  assert.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.ok(summary.testAccuracy > 0.8, `test accuracy ${summary.testAccuracy}`);
});

cliTest("bench --threads abc is one line naming the flag", () => {
  for (const runtime of RUNTIMES) failsWith(cli(runtime, ["bench", "--threads", "abc"]), 1, /retrograd bench: bench --threads: must be a comma-separated list of integers ≥ 1, got "abc"/, runtime);
});

cliTest("bench --vs-jaxjs off WebGPU is one line naming the flag, before anything is timed", () => {
  for (const runtime of RUNTIMES) failsWith(cli(runtime, ["bench", "--vs-jaxjs"]), 1, /retrograd bench: bench --vs-jaxjs: jax-js is compared on WebGPU only; add --backend webgpu/, runtime);
});

const small = [...mlp, "--steps", "20", "--batch-size", "32"];
const files = (out: string) => Object.fromEntries(readdirSync(out).map((f) => [f, readFileSync(join(out, f))]));

cliTest("a second run into a run's --out is refused and changes nothing; --overwrite replaces its run files", () => {
  for (const runtime of RUNTIMES) {
    const out = join(dir, `reuse-${runtime}`);
    assert.is(cli(runtime, [...small, "--out", out]).status, 0);
    const before = files(out);
    const again = cli(runtime, [...small, "--lr", "0.5", "--out", out]);
    failsWith(again, 2, `retrograd train: --out ${out}: the directory is not empty (checkpoint.safetensors, config.json, curves.svg, metrics.jsonl, model.safetensors); continue that run with --resume ${out}, choose another --out, or pass --overwrite`, runtime);
    assert.equal(files(out), before, `${runtime}: nothing in the directory changed`);
    const replaced = cli(runtime, [...small, "--steps", "10", "--lr", "0.5", "--out", out, "--overwrite", "--json"]);
    assert.is(replaced.status, 0, replaced.stderr);
    assert.is(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).train.lr, 0.5);
    const position = JSON.parse(rg.io.readSafetensorsMetadata(new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")))).position);
    assert.is(position.step, 10, `${runtime}: the checkpoint is the new run's`);
    const steps = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).step);
    assert.ok(steps.every((s) => s <= 10), `${runtime}: only the new run's metrics: steps ${steps}`);
  }
});

cliTest("--resume refuses flags that would change the run, naming each; config.json and the checkpoint must agree", () => {
  const out = join(dir, "reuse-node");
  for (const runtime of RUNTIMES) {
    failsWith(cli(runtime, ["train", "--resume", out, "--lr", "0.3", "--epochs", "4", "--seed", "2"]), 2,
      "retrograd train: --resume continues a run with the settings in its config.json; --lr, --epochs, --seed cannot be given with it", runtime);
  }
  const configPath = join(out, "config.json");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  writeFileSync(configPath, JSON.stringify({ ...config, train: { ...config.train, lr: 0.25 } }));
  failsWith(cli("node", ["train", "--resume", out]), 1,
    `${join(out, "checkpoint.safetensors")} was written by a run with other settings than ${configPath}: lr 0.5 there, 0.25 in config.json`, "lr edited");
  writeFileSync(configPath, JSON.stringify({ ...config, train: { ...config.train, epochs: "x" } }));
  failsWith(cli("node", ["train", "--resume", out]), 1, `${configPath}: train.epochs must be an integer ≥ 0, got "x"`, "epochs: \"x\"");
  writeFileSync(configPath, JSON.stringify({ ...config, dataset: "imagenet" }));
  failsWith(cli("node", ["train", "--resume", out]), 1, `${configPath}: dataset must be one of "fashion-mnist"`, "unknown dataset");
  writeFileSync(configPath, JSON.stringify(config).slice(0, 40));
  failsWith(cli("node", ["train", "--resume", out]), 1, `${configPath}: not valid JSON`, "torn config.json");
  writeFileSync(configPath, JSON.stringify(config));
});

/** `out`'s checkpoint with one field of its position (or extra) metadata replaced (undefined: deleted). */
function editCheckpoint(out: string, part: "position" | "extra", edit: (o: Record<string, unknown>) => void): void {
  const path = join(out, "checkpoint.safetensors");
  const bytes = new Uint8Array(readFileSync(path));
  const meta = rg.io.readSafetensorsMetadata(bytes);
  const o = JSON.parse(meta[part]);
  edit(o);
  writeFileSync(path, rg.io.writeSafetensors(rg.io.readSafetensors(bytes), { ...meta, [part]: JSON.stringify(o) }));
}

cliTest("malformed checkpoint metadata is one line naming the file and the field; epoch \"x\" no longer trains forever", () => {
  const out = join(dir, "malformed");
  assert.is(cli("node", [...mlp, "--epochs", "2", "--out", out]).status, 0);
  const path = join(out, "checkpoint.safetensors");
  const good = readFileSync(path);
  const cases: [string, "position" | "extra", (o: Record<string, unknown>) => void, string][] = [
    ["epoch \"x\"", "position", (o) => (o.epoch = "x"), 'position.epoch must be an integer ≥ 0, got "x"'],
    ["epoch -1e6", "position", (o) => (o.epoch = -1e6), "position.epoch must be an integer ≥ 0, got -1000000"],
    ["step missing", "position", (o) => delete o.step, "position.step must be an integer ≥ 0, got undefined"],
    ["rngNow null", "position", (o) => (o.rngNow = null), "position.rngNow must be an object, got null"],
    ["an epoch the run cannot reach", "position", (o) => (o.epoch = 1), "the position (epoch 1, batch 0, step 32) is not one a run of 16 batches per epoch reaches"],
    ["history a number", "extra", (o) => (o.history = 5), "extra.history must be an array, got 5"],
    ["an epoch record's loss a string", "extra", (o) => ((o.history as Record<string, unknown>[])[0].testLoss = "low"), 'extra.history[0].testLoss must be a number, got "low"'],
  ];
  cases.forEach(([what, part, edit, message], i) => {
    writeFileSync(path, good);
    editCheckpoint(out, part, edit);
    const runtime = RUNTIMES[i % 2];
    failsWith(cli(runtime, ["train", "--resume", out], 60_000), 1, `retrograd train: ${path}: ${message}`, `${runtime}: ${what}`);
  });
  // Metadata cut short (a torn JSON string) is named too.
  writeFileSync(path, good);
  const bytes = new Uint8Array(good);
  const meta = rg.io.readSafetensorsMetadata(bytes);
  writeFileSync(path, rg.io.writeSafetensors(rg.io.readSafetensors(bytes), { ...meta, position: meta.position.slice(0, 20) }));
  failsWith(cli("deno", ["train", "--resume", out]), 1, `${path}: the metadata's "position" is not valid JSON`, "torn position");
  writeFileSync(path, good);
});

cliTest("a torn last line of metrics.jsonl is skipped with a warning, and --resume goes on", () => {
  const out = join(dir, "malformed");
  const metrics = join(out, "metrics.jsonl");
  const intact = readFileSync(metrics, "utf8");
  for (const runtime of RUNTIMES) {
    writeFileSync(metrics, intact + '{"type":"step","epoch":3,"ba');
    const r = cli(runtime, ["train", "--resume", out]);
    assert.is(r.status, 0, `${runtime}: ${r.stderr}`);
    assert.match(r.stdout + r.stderr, `warning: ${metrics}: line ${intact.trim().split("\n").length + 1} is not a complete record (a write cut short by a crash?); skipped`);
    assert.is(readFileSync(metrics, "utf8"), intact, `${runtime}: the log is the intact one again`);
  }
});

cliTest("--resume of a run killed before its first checkpoint says so in one line", () => {
  const out = join(dir, "no-checkpoint");
  assert.is(cli("node", [...small, "--out", out]).status, 0);
  rmSync(join(out, "checkpoint.safetensors"));
  for (const runtime of RUNTIMES) {
    failsWith(cli(runtime, ["train", "--resume", out]), 1,
      `retrograd train: --resume ${out}: no checkpoint.safetensors: the run stopped before its first checkpoint`, runtime);
  }
});

cliTest("temp files of interrupted writes are removed when a run directory is opened, those of live processes kept", () => {
  const out = join(dir, "stale");
  assert.is(cli("node", [...small, "--out", out]).status, 0);
  const dead = spawnSync("node", ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const stale = [`checkpoint.safetensors.tmp-${dead.stdout}`, `metrics.jsonl.tmp-${dead.stdout}`];
  const live = `config.json.tmp-${process.pid}`;
  for (const name of [...stale, live]) writeFileSync(join(out, name), "partial");
  const r = cli("deno", ["train", "--resume", out]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, `removed 2 temporary file(s) of interrupted writes: ${stale.slice().sort().join(", ")}`);
  for (const name of stale) assert.not.ok(existsSync(join(out, name)), `${name} removed`);
  assert.ok(existsSync(join(out, live)), "a live writer's file stays");
  rmSync(join(out, live));
});

/** Start a run, send `signal` once it reports its first step; resolves when it has exited. */
async function signalRun(runtime: Runtime, argv: string[], signal: NodeJS.Signals) {
  const child = spawn(...command(runtime, argv));
  let stdout = "";
  let stderr = "";
  let sent = false;
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => {
    stderr += d;
    if (!sent && /^epoch \d+\/\d+ step /m.test(stderr)) sent = child.kill(signal);
  });
  const [status, exitSignal] = await once(child, "close");
  return { status, signal: exitSignal, stderr, summary: JSON.parse(stdout.trim().split("\n").pop() ?? "null") };
}

cliTest("SIGTERM stops a real run like Ctrl-C: exit 143, a checkpoint of its step, and --resume ends as an uninterrupted run", async () => {
  const long = [...mlp, "--threads", "2", "--steps", "3000", "--batch-size", "32", "--seed", "4", "--json"];
  const straight = join(dir, "sigterm-straight");
  assert.is(cli("node", [...long, "--out", straight]).status, 0);
  for (const runtime of RUNTIMES) {
    const out = join(dir, `sigterm-${runtime}`);
    const stopped = await signalRun(runtime, [...long, "--out", out], "SIGTERM");
    assert.is(stopped.signal, null, `${runtime}: exits by itself, not killed by the signal:\n${stopped.stderr}`);
    assert.is(stopped.status, 143, `${runtime}: exit status:\n${stopped.stderr}`);
    assert.match(stopped.stderr, "SIGTERM: finishing this step and saving a checkpoint");
    const step = stopped.summary.steps as number;
    assert.ok(step >= 1 && step < 3000, `${runtime}: stopped mid-run at step ${step}`);
    const position = JSON.parse(rg.io.readSafetensorsMetadata(new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")))).position);
    assert.is(position.step, step, `${runtime}: the checkpoint holds the step it stopped at`);
    assert.not.ok(existsSync(join(out, "model.safetensors")));
    const resumed = cli(runtime, ["train", "--resume", out, "--json"]);
    assert.is(resumed.status, 0, resumed.stderr);
    assert.equal(readFileSync(join(out, "model.safetensors")), readFileSync(join(straight, "model.safetensors")), `${runtime}: weights after resuming from step ${step}`);
  }
});

/** An IDX file of unsigned bytes. */
function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** A --data directory for fashion-mnist with `nTrain` / `nTest` synthetic images (train files may be replaced). */
function dataDir(name: string, nTrain: number, nTest: number, trainImages?: Uint8Array): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  const spec = { channels: 1, height: 28, width: 28, classes: 10, seed: 1 };
  for (const [prefix, n, split] of [["train", nTrain, "train"], ["t10k", nTest, "test"]] as const) {
    const ds = n > 0 ? rg.data.synthetic({ ...spec, n, split }) : { images: new Uint8Array(0), labels: new Int32Array(0) };
    writeFileSync(join(path, `${prefix}-images-idx3-ubyte`), idx([n, 28, 28], ds.images));
    writeFileSync(join(path, `${prefix}-labels-idx1-ubyte`), idx([n], Uint8Array.from(ds.labels)));
  }
  if (trainImages) {
    rmSync(join(path, "train-images-idx3-ubyte"));
    writeFileSync(join(path, "train-images-idx3-ubyte.gz"), trainImages);
  }
  return path;
}

cliTest("eval reads only the test split: a training file that is a gzip bomb is never opened", () => {
  const weights = join(dir, "reuse-node", "model.safetensors");
  // 64 KB of gzip that would inflate to 64 MiB, under a header declaring 64 images (50 KB).
  const bomb = gzipSync(idx([64, 28, 28], new Uint8Array(2 ** 26)));
  const data = dataDir("eval-bomb", 64, 100, bomb);
  for (const runtime of RUNTIMES) {
    const r = cli(runtime, ["eval", "--model", "mlp", "--dataset", "fashion-mnist", "--data", data, "--weights", weights, "--json"]);
    assert.is(r.status, 0, `${runtime}: ${r.stderr}`);
    assert.is(JSON.parse(r.stdout).n, 100);
  }
  const train = cli("node", ["train", "--model", "mlp", "--dataset", "fashion-mnist", "--data", data, "--steps", "2", "--out", join(dir, "bomb-run")]);
  failsWith(train, 1, /train-images-idx3-ubyte\.gz: the gzip data inflates to more than the 50192 bytes its IDX header declares \(dims \[64, 28, 28\]\); stopped after \d+ bytes/, "train on the bomb");
});

cliTest("an empty test split is refused before training: no test images", () => {
  const data = dataDir("empty-test", 64, 0);
  for (const runtime of RUNTIMES) {
    failsWith(cli(runtime, ["train", "--model", "mlp", "--dataset", "fashion-mnist", "--data", data, "--steps", "2", "--out", join(dir, `empty-${runtime}`)]), 1,
      "retrograd train: dataset fashion-mnist: no test images", runtime);
  }
});

cliTest("--steps: progress counts the step budget, not the epoch", () => {
  const r = cli("node", [...mlp, "--steps", "3", "--batch-size", "8", "--json", "--out", join(dir, "steps")]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /^epoch 1\/1 step 1\/3 /m);
  assert.not.match(r.stderr, /step 1\/256/);
});

cliTest("file-system problems are one line naming the flag and the path, under Node and Deno; /proc paths do not hang", () => {
  const file = join(dir, "a-file");
  writeFileSync(file, "x");
  const sparse = join(dir, "huge.safetensors");
  const fd = openSync(sparse, "w");
  closeSync(fd);
  spawnSync("truncate", ["-s", String(2 ** 31 + 1), sparse]);
  const cases: [string[], string][] = [
    [["eval", "--model", "mlp", "--weights", join(dir, "missing.safetensors")], `retrograd eval: --weights ${join(dir, "missing.safetensors")}: cannot open: no such file or directory (ENOENT)`],
    [["eval", "--model", "mlp", "--weights", dir], `retrograd eval: --weights ${dir}: not a regular file (a directory)`],
    [["eval", "--model", "mlp", "--weights", "/dev/zero"], "retrograd eval: --weights /dev/zero: not a regular file (a device, pipe or socket)"],
    [["eval", "--model", "mlp", "--weights", sparse], `retrograd eval: --weights ${sparse}: ${2 ** 31 + 1} bytes is more than the ${2 ** 31 - 1} a file may have here`],
    [[...small, "--init", join(dir, "missing.safetensors"), "--out", join(dir, "init-missing")], `retrograd train: --init ${join(dir, "missing.safetensors")}: cannot open: no such file or directory (ENOENT)`],
    [[...small, "--out", file], `retrograd train: --out ${file}: exists and is not a directory`],
    [[...small, "--out", join(file, "run")], `retrograd train: --out ${join(file, "run")}: ${file} is not a directory`],
    [[...small, "--out", "/proc/rpx/run"], "retrograd train: --out /proc/rpx/run: cannot create /proc/rpx: no such file or directory (ENOENT)"],
    [["plot", join(dir, "reuse-node"), "--out", "/proc/rpx/curves.svg"], "retrograd plot: --out /proc/rpx/curves.svg: cannot create /proc/rpx: no such file or directory (ENOENT)"],
    [["plot", join(dir, "reuse-node"), "--out", join(file, "curves.svg")], `retrograd plot: --out ${join(file, "curves.svg")}: ${file} is not a directory`],
  ];
  cases.forEach(([argv, message], i) => {
    const runtime = RUNTIMES[i % 2];
    const r = cli(runtime, argv, 60_000);
    assert.is(r.signal, null, `${runtime} ${argv.join(" ")}: ended by itself (no hang)`);
    failsWith(r, 1, message, `${runtime} ${argv.join(" ")}`);
    assert.is(r.stderr.trim().split("\n").length, 1, `${runtime}: one line:\n${r.stderr}`);
  });
});

test.run();
