// Runs every test file under Node (the esbuild bundles in build/test/) and under Deno (the
// TypeScript sources directly), one process per file, and closes with one summary line.
// Usage: node scripts/test.mjs [--node | --deno] [name-filter]
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const args = process.argv.slice(2);
const runtimes = args.includes("--node") ? ["node"] : args.includes("--deno") ? ["deno"] : ["node", "deno"];
const filter = args.find((a) => !a.startsWith("--")) ?? "";
// Under Deno itself (`deno task test`, no Node needed) the same binary runs the tests.
const deno = "Deno" in globalThis ? process.execPath : "node_modules/.bin/deno";
const files = readdirSync("test").filter((f) => f.endsWith(".test.ts") && f.includes(filter)).sort();

let passed = 0, failed = 0, skipped = 0;
const failures = [];
for (const runtime of runtimes) {
  for (const file of files) {
    const cmd = runtime === "node"
      ? ["node", [`build/test/${file.replace(/\.ts$/, ".mjs")}`]]
      : [deno, ["run", "-A", "--quiet", `test/${file}`]];
    const started = Date.now();
    const r = spawnSync(cmd[0], cmd[1], { encoding: "utf8", env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" } });
    const out = (r.stdout ?? "") + (r.stderr ?? "");
    const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [0, 0])[1]);
    const total = num("Total"), ok = num("Passed"), skip = num("Skipped");
    // uvu leaves skipped tests out of Total; a file that ran nothing and skipped nothing is broken.
    const bad = r.status !== 0 || ok + skip < total || total + skip === 0;
    passed += ok;
    skipped += skip;
    failed += bad ? Math.max(1, total - ok - skip) : 0;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${bad ? "FAIL" : "ok  "} ${runtime.padEnd(4)} ${file.padEnd(32)} ${ok}/${total} ${skip ? `(${skip} skipped) ` : ""}${secs}s`);
    if (bad) failures.push(`--- ${runtime} ${file} (exit ${r.status})\n${out}`);
  }
}
for (const f of failures) console.log(f);
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
