/**
 * `npm run bench` entry (Node; `deno task bench` under Deno): run the benchmark and print
 * its JSON on stdout, the table on stderr. Flags: see bench/throughput.ts.
 */
import { runBench } from "./throughput.ts";

console.log(JSON.stringify(await runBench(process.argv.slice(2)), null, 2));
