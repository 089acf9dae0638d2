/**
 * Runs the bundled run20 (build/support/run20.mjs, read from stdin) in a plain module worker
 * and prints its result as one JSON line. Deno with no permissions at all may not load a
 * worker from a file (that is a read), but it may start one from a blob: URL, and reading
 * stdin needs no permission:
 *
 *   node_modules/.bin/deno run test/support/run20_worker.ts < build/support/run20.mjs
 *
 * Adds the parent's view of the cold start (`new Worker` → result) and its own RSS.
 */
declare const Deno: { stdin: { readable: ReadableStream<Uint8Array> }; memoryUsage(): { rss: number } };
export {};

const code = await new Response(Deno.stdin.readable).text();
const spawned = performance.now();
const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
const worker = new Worker(url, { type: "module" });
const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
  worker.onmessage = (e) => resolve(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    reject(new Error(`run20 worker failed: ${e.message}`));
  };
});
worker.terminate();
console.log(JSON.stringify({ ...result, workerRoundTripMs: performance.now() - spawned, processRssBytes: Deno.memoryUsage().rss }));
