/**
 * Threads for the CPU backend under Node: Node 20 has no web Worker, so this registers a
 * node:worker_threads host with src/backend/cpu/threads.ts. Workers run the source text of
 * src/backend/cpu/worker.ts (`eval: true`, so no worker file has to be found on disk) and
 * are unref'd, so they never keep a process alive. The default thread count of
 * `setThreads()` becomes os.availableParallelism(). Under Deno (which has web Workers) this
 * is a no-op: the built-in host is used.
 *
 *   import { installNodeThreads } from "./node_threads.ts";
 *   installNodeThreads();
 *   await rg.setThreads(n);          // n omitted: every core
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { registerThreadsHost } from "../src/backend/cpu/threads.ts";

export function installNodeThreads(): void {
  if (typeof (globalThis as { Worker?: unknown }).Worker === "function") return;
  registerThreadsHost({
    spawn(workerSource) {
      const code = `const { parentPort } = require("node:worker_threads");\n` +
        workerSource(`(cb) => parentPort.once("message", cb)`);
      const worker = new Worker(code, { eval: true });
      worker.unref();
      return worker;
    },
    concurrency: availableParallelism(),
  });
}
