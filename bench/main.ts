/** `npm run bench` entry: run the throughput benchmark and print its JSON on stdout. */
import { runBench } from "./throughput.ts";

console.log(JSON.stringify(await runBench(process.argv.slice(2)), null, 2));
