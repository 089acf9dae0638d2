/**
 * The `retrograd` command, one surface under both runtimes:
 *   deno run -A cli/main.ts train [flags]      (or: deno task train)
 *   npx retrograd train [flags]                (Node, after npm install; dist/cli.mjs)
 * Subcommands: train, eval, export, plot, analyze, bench. `retrograd <command> --help` lists every flag.
 */
import { helpText, parseFlags, UsageError, type Flag } from "./flags.ts";
import { train, TRAIN_FLAGS } from "./train.ts";
import { EVAL_FLAGS, evalCommand } from "./eval.ts";
import { plot, PLOT_FLAGS } from "./plot.ts";
import { EXPORT_FLAGS, exportCommand } from "./export.ts";
import { analyze, ANALYZE_FLAGS } from "./analyze.ts";
import { RetrogradError } from "../src/errors.ts";
import { setThreads } from "../src/backend/cpu/threads.ts";
import { installNodeThreads } from "./node_threads.ts";
import { enableNodeRelaxedSimd } from "./node_wasm.ts";
import { setCpuKernels } from "../src/backend/cpu/index.ts";

interface Command {
  summary: string;
  flags: Flag[];
  run(flags: ReturnType<typeof parseFlags>): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  train: { summary: "train a model (default: ResNet-20 on Fashion-MNIST)", flags: TRAIN_FLAGS, run: train },
  eval: { summary: "test loss and accuracy of saved weights: eval RUN_DIR | --weights FILE [--model M --width W --norm bn|zca]", flags: EVAL_FLAGS, run: evalCommand },
  export: { summary: "saved weights to an ONNX model for inference: export --onnx FILE --weights W", flags: EXPORT_FLAGS, run: exportCommand },
  plot: { summary: "overlay the curves of run directories in one SVG: plot DIR... [--out FILE]; --probes: their probes' figures", flags: PLOT_FLAGS, run: plot },
  analyze: { summary: "probes of the backward pass on saved weights: analyze RUN_DIR | --model M --weights FILE [--probe LIST]", flags: ANALYZE_FLAGS, run: analyze },
  bench: {
    summary: "throughput benchmark (as npm run bench): bench [--threads 1,2] [--models resnet20,resnet18] [--vs-torch] [--vs-tfjs] [--backend webgpu [--vs-jaxjs]]",
    flags: [],
    run: async (flags) => {
      const { runBench, BenchErrorBase } = await loadBench();
      try {
        process.stdout.write(JSON.stringify(await runBench(flags._), null, 2) + "\n");
      } catch (error) {
        // The bench bundle has its own copy of the error classes: answer its errors as ours.
        if (error instanceof BenchErrorBase) throw new RetrogradError(error.message);
        throw error;
      }
      return 0;
    },
  },
};

/**
 * The benchmark is its own module, kept out of the CLI bundle: dist/bench.mjs beside the
 * bundle, or bench/throughput.ts when the CLI runs from source (Deno).
 */
async function loadBench(): Promise<typeof import("../bench/throughput.ts")> {
  const fromSource = import.meta.url.endsWith(".ts");
  return await import(new URL(fromSource ? "../bench/throughput.ts" : "./bench.mjs", import.meta.url).href);
}

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(7)} ${c.summary}`);
  return `usage: retrograd <command> [flags]\n\n${rows.join("\n")}\n\nretrograd <command> --help lists the flags.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(`retrograd: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(helpText(name, command.summary, command.flags));
    return 0;
  }
  try {
    return await command.run(name === "bench" ? { _: rest, _given: [] } : parseFlags(rest, command.flags));
  } catch (error) {
    if (error instanceof RetrogradError) {
      process.stderr.write(`retrograd ${name}: ${error.message}\n`);
      return error instanceof UsageError ? 2 : 1;
    }
    throw error;
  } finally {
    await setThreads(1); // stop the workers, or Deno keeps the process alive after a failure too
  }
}

installNodeThreads(); // Node has no web Worker: threads come from node:worker_threads
enableNodeRelaxedSimd(); // Node 20: relaxed SIMD needs a flag, set after the library's import-time probe,
await setCpuKernels("auto"); // so the default kernels are chosen again with it on (elsewhere: the same choice)
process.exitCode = await main(process.argv.slice(2));
