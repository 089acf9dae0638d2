/**
 * The probes from the command line, on real processes: `train --probe` writes probes.jsonl
 * (records at the scheduled steps, the same bytes under Node and Deno) and ends with the very
 * weights and metrics of the same run without probes; a resumed run drops the probe records
 * written after its checkpoint and ends with the log of an uninterrupted run; `analyze`
 * measures saved weights (the filter norms of model.safetensors); `plot --probes` draws the
 * figures. Bad flags are one line naming the flag, exit status 2, no stack trace. It spawns
 * both runtimes itself, so it runs once, from the Node pass.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rg from "../src/mod.ts";

const isDeno = "Deno" in globalThis;
if (isDeno) console.log("cli_probes.test: runs from the Node pass (it spawns both runtimes itself)");
const hasFashion = existsSync("/usr/share/datasets/fashion-mnist");
const cliTest = isDeno ? test.skip : test;
const fashionTest = isDeno || !hasFashion ? test.skip : test;

const dir = mkdtempSync(join(tmpdir(), "retrograd-cli-probes-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

type Runtime = "node" | "deno";

function command(runtime: Runtime, argv: string[]): [string, string[]] {
  return runtime === "node" ? ["node", ["dist/cli.mjs", ...argv]] : ["node_modules/.bin/deno", ["run", "-A", "cli/main.ts", ...argv]];
}

function cli(argv: string[], runtime: Runtime = "node") {
  const r = spawnSync(...command(runtime, argv), { encoding: "utf8", timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function succeeds(argv: string[], runtime: Runtime = "node") {
  const r = cli(argv, runtime);
  assert.is(r.status, 0, `${runtime} ${argv.join(" ")}:\n${r.stderr}`);
  return r;
}

const records = (path: string) => readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => rg.io.parseRecord(l) as Record<string, unknown>);
/** metrics.jsonl without its timings. */
const metrics = (runDir: string) => records(join(runDir, "metrics.jsonl")).map(({ seconds: _s, imagesPerSec: _i, ...rest }) => rest);

const synthetic = ["train", "--model", "mlp", "--dataset", "synthetic", "--threads", "1"];

cliTest("bad probe flags and misuse of analyze and plot --probes are one line naming the flag, exit 2", () => {
  const finished = join(dir, "finished");
  succeeds([...synthetic, "--steps", "2", "--out", finished]);
  const cases: [string[], RegExp][] = [
    [[...synthetic, "--probe", "bogus", "--out", join(dir, "a")], /--probe: unknown probe "bogus"; probes: layers, activations, ics/],
    [[...synthetic, "--probe", "landscape@0", "--out", join(dir, "b")], /--probe: probe "landscape@0": the period after @ must be a positive integer/],
    [[...synthetic, "--probe", ",", "--out", join(dir, "c")], /--probe: no probes in ","/],
    [[...synthetic, "--probe-every", "5", "--out", join(dir, "d")], /--probe-every given without --probe/],
    [[...synthetic, "--probe", "activations", "--probe-layers", "fc9,layers.0", "--out", join(dir, "e")], /--probe-layers: the model has no module fc9; its modules: /],
    [[...synthetic, "--noisy-bn", "--out", join(dir, "f")], /--noisy-bn: mlp: noisy BatchNorm: the model has no BatchNorm layers/],
    [["train", "--resume", finished, "--probe", "ics"], /--probe cannot be given with it/],
    [["analyze"], /analyze needs a run directory, or --model and --weights/],
    [["analyze", "--model", "mlp"], /analyze needs --weights FILE with --model/],
    [["analyze", finished, finished], /analyze takes one run directory, got 2/],
    [["analyze", finished, "--probe", "ics@5"], /--probe: analyze measures every probe on each batch; "ics@5" has a period/],
    [["analyze", finished, "--probe", "hessian"], /--probe: unknown probe "hessian"/],
    [["analyze", finished, "--probe-layers", "nope"], /--probe-layers: the model has no module nope/],
    [["analyze", join(dir, "nowhere")], /analyze .*nowhere: no config\.json there/],
    [["plot", "--probes", finished], /plot --probes: .*finished has no probes\.jsonl \(was it trained with --probe\?\)/],
  ];
  for (const [argv, pattern] of cases) {
    const r = cli(argv);
    assert.is(r.status, 2, `${argv.join(" ")}: exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, pattern, argv.join(" "));
    assert.not.match(r.stderr, /^\s+at /m, `${argv.join(" ")}: no stack trace:\n${r.stderr}`);
  }
  for (const name of ["a", "b", "c", "d"]) assert.not.ok(existsSync(join(dir, name)), `--out ${name}: nothing created for a flag refused before the run`);
});

cliTest("a resumed run drops the probe records written after its checkpoint and ends with an uninterrupted run's probes.jsonl", async () => {
  const long = [...synthetic, "--steps", "600", "--batch-size", "32", "--seed", "5", "--probe", "logits,filters,layers@7", "--probe-every", "5", "--json"];
  const straight = join(dir, "straight");
  succeeds([...long, "--out", straight]);
  const all = records(join(straight, "probes.jsonl"));
  const at = (probe: string) => all.filter((r) => r.probe === probe).map((r) => r.step);
  assert.equal(at("logits"), Array.from({ length: 120 }, (_, i) => 5 * (i + 1)), "logits every 5 steps");
  assert.equal(at("layers"), Array.from({ length: 85 }, (_, i) => 7 * (i + 1)), "layers every 7 steps");
  assert.equal(JSON.parse(readFileSync(join(straight, "config.json"), "utf8")).probes, { spec: "logits,filters,layers@7", every: 5 });

  const out = join(dir, "stopped");
  const child = spawn(...command("node", [...long, "--out", out]));
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
    if (!child.killed && /^epoch \d+\/\d+ step /m.test(stderr)) child.kill("SIGTERM");
  });
  const [status] = await once(child, "close");
  assert.is(status, 143, stderr);
  const step = JSON.parse(rg.io.readSafetensorsMetadata(new Uint8Array(readFileSync(join(out, "checkpoint.safetensors")))).position).step as number;
  assert.ok(step < 600, `stopped mid-run at step ${step}`);
  const kept = readFileSync(join(out, "probes.jsonl"), "utf8");
  assert.equal(records(join(out, "probes.jsonl")), all.filter((r) => (r.step as number) <= step), "the stopped run's records so far");
  // A record of a step after the checkpoint, as a crash between the probe and the checkpoint leaves.
  appendFileSync(join(out, "probes.jsonl"), `{"type":"probe","probe":"logits","step":${step + 1},"epoch":1,"lr":0.1,"norm":1}\n`);
  succeeds(["train", "--resume", out, "--json"]);
  assert.is(readFileSync(join(out, "probes.jsonl"), "utf8"), readFileSync(join(straight, "probes.jsonl"), "utf8"), `resumed from step ${step} (${kept.length} bytes kept)`);
  assert.equal(readFileSync(join(out, "model.safetensors")), readFileSync(join(straight, "model.safetensors")));
});

fashionTest("a real probed run on Fashion-MNIST: records at the scheduled steps, Node = Deno, the run unchanged; analyze and plot --probes read it", () => {
  const args = ["train", "--model", "vgg11-bn", "--width", "0.0625", "--steps", "8", "--batch-size", "32", "--lr", "0.05", "--schedule", "constant", "--warmup", "0", "--seed", "2", "--threads", "1", "--json"];
  const probes = ["--probe", "landscape,ics,logits,filters,activations@3", "--probe-every", "4"];
  const plain = join(dir, "fm-plain"), node = join(dir, "fm-node"), deno = join(dir, "fm-deno");
  succeeds([...args, "--out", plain]);
  succeeds([...args, ...probes, "--out", node]);
  succeeds([...args, ...probes, "--out", deno], "deno");
  assert.equal(readFileSync(join(node, "model.safetensors")), readFileSync(join(plain, "model.safetensors")), "the probes left the weights alone");
  assert.equal(metrics(node), metrics(plain), "and the metrics");
  assert.is(readFileSync(join(deno, "probes.jsonl"), "utf8"), readFileSync(join(node, "probes.jsonl"), "utf8"), "Deno writes Node's records");

  const written = records(join(node, "probes.jsonl"));
  assert.equal(written.map((r) => `${r.probe}@${r.step}`), [
    "activations@3", "ics@4", "landscape@4", "logits@4", "filters@4", "activations@6", "ics@8", "landscape@8", "logits@8", "filters@8",
  ]);
  for (const r of written.filter((r) => r.probe === "landscape")) {
    assert.equal(r.stepSizes, [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4].map((m) => m * 0.05), "η′ from η/2 to 4η");
    const losses = r.losses as number[], changes = r.gradientChanges as number[];
    assert.ok(losses.every(Number.isFinite) && changes.every((c) => c > 0), "a loss and a gradient change per step size");
    assert.is(r.lossVariation, Math.max(...losses) - Math.min(...losses));
    assert.ok((r.effectiveBetaSmoothness as number) > 0);
  }
  const ics = written.find((r) => r.probe === "ics")!.layers as { name: string; shift: number; cosine: number }[];
  assert.is(ics.length, 10, "VGG-11: 8 convs and the classifier's 2 linear layers");
  assert.is(ics[0].shift, 0, "nothing below the first layer moves");
  assert.ok(ics.slice(1).every((l) => l.shift > 0 && l.cosine > 0 && l.cosine <= 1 + 1e-9), JSON.stringify(ics));

  const analyzed = join(dir, "analyzed.jsonl");
  succeeds(["analyze", node, "--probe", "filters,logits", "--batches", "2", "--threads", "1", "--out", analyzed]);
  const measured = records(analyzed);
  assert.equal(measured.map((r) => `${r.probe}@${r.step}`), ["logits@1", "filters@1", "logits@2", "filters@2"]);
  const weights = rg.io.readSafetensors(new Uint8Array(readFileSync(join(node, "model.safetensors"))));
  for (const layer of measured[1].layers as { name: string; norms: number[] }[]) {
    const w = weights.get(`${layer.name}.weight`)!;
    const values = w.dataSync(), size = values.length / w.shape[0];
    const expected = Array.from({ length: w.shape[0] }, (_, o) => Math.sqrt(values.slice(o * size, (o + 1) * size).reduce((s, v) => s + v * v, 0)));
    assert.equal(layer.norms.map((n) => n.toPrecision(12)), expected.map((n) => n.toPrecision(12)), `${layer.name}: the saved weights' filter norms`);
  }

  const figures = join(dir, "figures");
  const drawn = succeeds(["plot", "--probes", node, deno, "--out", figures]);
  assert.match(drawn.stdout, "(2 runs)");
  assert.equal(readdirSync(figures).sort(), ["activations.svg", "filters.svg", "histograms.svg", "ics.svg", "landscape.svg", "logits.svg"]);
  const landscape = readFileSync(join(figures, "landscape.svg"), "utf8");
  assert.match(landscape, /^<svg /);
  assert.is((landscape.match(/<polygon /g) ?? []).length, 4, "a band per run in each of the two band panels");
});

test.run();
