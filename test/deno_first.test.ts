/**
 * Deno first: a Deno user builds and runs retrograd with no Node on the machine. A copy of the
 * working tree (what git tracks and does not ignore) gets its build tools from npm with
 * `deno install`, is built with `deno task build` (AssemblyScript, esbuild and TypeScript run
 * under Deno) with only Deno on the PATH, and then runs the README's opening training script
 * with `deno run` and no permissions. The copy is removed afterwards. Runs from the Deno pass
 * of the suite (the Node pass skips it).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const isDeno = "Deno" in globalThis;
if (!isDeno) console.log("deno_first.test: skipped under Node: the Deno pass runs it");
const denoTest = isDeno ? test : test.skip;

function run(cmd: string, args: string[], opts: SpawnSyncOptions): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 600_000, ...opts });
  assert.is(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

denoTest("a copy of the tree builds with `deno install && deno task build` and no Node, then trains with `deno run`", () => {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-deno-first-"));
  try {
    const files = run("git", ["ls-files", "-z", "-co", "--exclude-standard"], {}).split("\0").filter((f) => f && existsSync(f));
    for (const file of files) {
      mkdirSync(join(dir, dirname(file)), { recursive: true });
      copyFileSync(file, join(dir, file));
    }
    const denoOnly = { cwd: dir, env: { HOME: process.env.HOME ?? dir, PATH: dirname(process.execPath), NO_COLOR: "1" } };
    assert.is(spawnSync("node", ["--version"], { env: denoOnly.env }).error?.message.includes("ENOENT"), true, "node is not on the PATH");
    run(process.execPath, ["install", "--quiet"], denoOnly);
    run(process.execPath, ["task", "--quiet", "build"], denoOnly);
    assert.ok(existsSync(join(dir, "build/kernels_wasm.ts")) && existsSync(join(dir, "dist/retrograd.mjs")), "the build's outputs");

    const readme = readFileSync("README.md", "utf8");
    const script = readme.match(/^```ts test\n([\s\S]*?)^```$/m)![1];
    writeFileSync(join(dir, "train.ts"), script);
    const out = run(process.execPath, ["run", "--quiet", "--no-prompt", "train.ts"], denoOnly);
    const losses = [...out.matchAll(/^loss (\d+\.\d+)$/gm)].map((m) => Number(m[1]));
    assert.ok(losses.length === 8 && losses[7] < losses[0], `the README's script trained: ${losses.join(", ")}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
