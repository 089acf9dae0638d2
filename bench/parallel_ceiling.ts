/**
 * How far the 2-thread training step is from what the machine itself allows. The speed-up of
 * one process at 2 threads over 1 thread mixes two losses: ours (serial parts of the step,
 * waking and waiting for workers, parts of unequal length) and the machine's (two cores
 * sharing caches, memory bandwidth, a power budget, and on a cloud VM a neighbour). Two
 * independent 1-thread processes running the same step at the same time lose only the
 * machine's share: their combined throughput over one process alone is the ceiling any
 * 2-thread split could reach here, now. The bench measures the three side by side, round by
 * round (the order rotates each round, so with a multiple of 3 rounds drift falls on each
 * alike):
 *
 *   solo      one process, 1 thread
 *   pair      N processes, 1 thread each, released together after their warm-up; each keeps
 *             stepping, untimed, until all have timed theirs, so every timed step has company
 *   threads   one process, N threads (`--threads`, default 2)
 *
 * and reports, from the medians of step times: speed-up = solo / threads, ceiling =
 * N · solo / pair (N copies' throughput over one's), and efficiency = speed-up / ceiling: the
 * part of the reachable speed-up the split gets. Each run is a fresh process (the model's step
 * of bench/throughput.ts: ResNet-20 at batch 64, ResNet-18 with the CIFAR stem at batch 32,
 * random 3×32×32 images, SGD with momentum and weight decay) with at least 3 seconds of
 * warm-up before the barrier. Node only (it spawns itself). JSON with every step time on
 * stdout, a table on stderr:
 *
 *   node esbuild.config.mjs && node build/parallel_ceiling.mjs [--models resnet20,resnet18]
 *     [--threads 2] [--rounds 6] [--steps 6] [--kernels relaxed|plain] > ceiling.json
 */
import * as rg from "../src/mod.ts";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { installNodeThreads } from "../cli/node_threads.ts";
import { enableNodeRelaxedSimd } from "../cli/node_wasm.ts";
import { DEFAULT_BATCH, trainingStep } from "./throughput.ts";
import { log, median, option } from "./bench_args.ts";

/**
 * The child: build the step, warm up, say "ready", wait for "go" on stdin, time the steps,
 * print them (and the thread count in effect) as one JSON line, then keep stepping untimed
 * until "stop" or the end of stdin, so that the copies still timing are not left alone.
 */
async function child(): Promise<void> {
  installNodeThreads();
  enableNodeRelaxedSimd();
  await rg.setCpuKernels(option("kernels", "relaxed") as rg.CpuKernels);
  const threads = await rg.setThreads(Number(option("threads", "1")));
  const name = option("model", "resnet20");
  const { step, dispose } = trainingStep(name, DEFAULT_BATCH[name] ?? 32);
  // Warm up for 3 steps and 3 seconds: scratch growth, worker start, and V8's tier-up of the
  // kernels, which compiles on background threads that would otherwise compete with a pair's
  // other copy for the cores.
  const warmUntil = performance.now() + 3000;
  for (let i = 0; i < 3 || performance.now() < warmUntil; i++) step();
  const input = createInterface({ input: process.stdin });
  let stopped = false;
  const go = new Promise<void>((resolve) => input.once("line", () => resolve()));
  input.on("close", () => { stopped = true; });
  process.stdout.write("ready\n");
  await go;
  input.on("line", () => { stopped = true; });
  const stepMs: number[] = [];
  for (let i = 0; i < Number(option("steps", "6")); i++) {
    const t0 = performance.now();
    step();
    stepMs.push(performance.now() - t0);
  }
  process.stdout.write(`${JSON.stringify({ threads, stepMs })}\n`);
  // Steps are synchronous: yield to the event loop between them so that "stop" is read.
  while (!stopped) {
    step();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  dispose();
  process.exit(0);
}

/** A child process and its stdout lines, each awaited in turn (null once stdout has closed). */
function startChild(args: string[]) {
  const p = spawn(process.execPath, [process.argv[1], "--child", ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  const waiting: ((line: string | null) => void)[] = [];
  let closed = false;
  const out = createInterface({ input: p.stdout! });
  out.on("line", (line) => (waiting.length > 0 ? waiting.shift()!(line) : lines.push(line)));
  out.on("close", () => {
    closed = true;
    for (const w of waiting.splice(0)) w(null);
  });
  const next = () => new Promise<string | null>((resolve) =>
    lines.length > 0 ? resolve(lines.shift()!) : closed ? resolve(null) : waiting.push(resolve));
  const exited = new Promise<number>((resolve) => p.on("exit", (code) => resolve(code ?? 1)));
  return { p, next, exited };
}

/**
 * Start `copies` children at `threads` threads each; release them together once all are
 * warm; their step times. Lines a child prints other than its "ready" and its JSON are
 * skipped; a child that exits early, or runs on fewer threads than asked, fails the bench
 * (and the others are killed).
 */
async function runTogether(copies: number, threads: number, model: string, steps: number, kernels: string): Promise<number[][]> {
  const args = ["--model", model, "--threads", String(threads), "--steps", String(steps), "--kernels", kernels];
  const children = Array.from({ length: copies }, () => startChild(args));
  const fail = (why: string): never => {
    for (const c of children) c.p.kill();
    throw new Error(`parallel_ceiling: a ${threads}-thread child of ${model} ${why}`);
  };
  const until = async (c: ReturnType<typeof startChild>, wanted: (line: string) => boolean, what: string) => {
    for (;;) {
      const line = await c.next();
      if (line === null) return fail(`exited (code ${await c.exited}) before ${what}`);
      if (wanted(line)) return line;
    }
  };
  for (const c of children) await until(c, (line) => line === "ready", "its warm-up ended");
  for (const c of children) c.p.stdin!.write("go\n");
  const results = await Promise.all(children.map((c) => until(c, (line) => line.startsWith("{"), "it printed its step times")));
  for (const c of children) c.p.stdin!.end("stop\n");
  const codes = await Promise.all(children.map((c) => c.exited));
  if (codes.some((code) => code !== 0)) fail(`exited with code ${codes.find((code) => code !== 0)}`);
  return results.map((line) => {
    const r = JSON.parse(line) as { threads: number; stepMs: number[] };
    if (r.threads !== threads) fail(`ran on ${r.threads} threads`);
    return r.stepMs;
  });
}

async function main(): Promise<void> {
  const models = option("models", "resnet20,resnet18").split(",").filter(Boolean);
  const threads = Number(option("threads", "2"));
  const rounds = Number(option("rounds", "6"));
  const steps = Number(option("steps", "6"));
  const kernels = option("kernels", "relaxed");
  const configs = ["solo", "pair", "threads"] as const;
  const out: unknown[] = [];
  for (const model of models) {
    const ms: Record<(typeof configs)[number], number[]> = { solo: [], pair: [], threads: [] };
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < configs.length; k++) {
        const config = configs[(k + r) % configs.length];
        const runs = config === "pair"
          ? await runTogether(threads, 1, model, steps, kernels)
          : await runTogether(1, config === "solo" ? 1 : threads, model, steps, kernels);
        ms[config].push(...runs.flat());
      }
    }
    const solo = median(ms.solo), pair = median(ms.pair), split = median(ms.threads);
    const speedUp = solo / split, ceiling = (threads * solo) / pair;
    log(`${model}: step ms solo ${solo.toFixed(1)}, ${threads} copies ${pair.toFixed(1)}, ${threads} threads ${split.toFixed(1)}; ` +
      `speed-up ${speedUp.toFixed(2)}×, ceiling ${ceiling.toFixed(2)}×, efficiency ${(speedUp / ceiling).toFixed(3)}`);
    out.push({ model, batch: DEFAULT_BATCH[model] ?? 32, threads, kernels, stepMs: ms, medianMs: { solo, pair, threads: split }, speedUp, ceiling, efficiency: speedUp / ceiling });
  }
  console.log(JSON.stringify({ bench: "parallel-ceiling", rounds, steps, models: out }, null, 1));
}

if (process.argv.includes("--child")) await child();
else await main();
