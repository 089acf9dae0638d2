/**
 * The README's examples run as written, so they cannot drift from the code. Convention: a
 * TypeScript block fenced as ```ts test is a complete program (it imports retrograd as
 * "./src/mod.ts", as a file at the repository root would, or as "retrograd", as an installed
 * package); plain ```ts blocks are fragments and are not run. Each marked block runs in the
 * runtime of this pass, in an empty directory: under Node bundled by esbuild, under Deno as it
 * is and with no permissions unless it uses node:fs (then it may write to that directory
 * only). It must exit 0, and a block that prints a loss per step must have learned.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";

const isDeno = "Deno" in globalThis;
const readme = readFileSync("README.md", "utf8");
const modulePath = resolve("src/mod.ts");
const outDir = resolve("build/readme", isDeno ? "deno" : "node");
mkdirSync(outDir, { recursive: true });

const blocks = [...readme.matchAll(/^```ts test\n([\s\S]*?)^```$/gm)].map((m) => ({
  line: readme.slice(0, m.index).split("\n").length,
  code: m[1].replace(/from "(\.\/src\/mod\.ts|retrograd)"/g, `from ${JSON.stringify(modulePath)}`),
}));

test("the README marks its runnable examples", () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} blocks fenced as \`\`\`ts test`);
});

async function run(file: string, usesFs: boolean, cwd: string) {
  if (isDeno) {
    const permissions = usesFs ? [`--allow-write=${cwd}`] : [];
    return spawnSync(process.execPath, ["run", "--quiet", "--no-prompt", ...permissions, file], { cwd, encoding: "utf8", timeout: 300_000 });
  }
  const esbuild = await import("esbuild");
  const bundle = file.replace(/\.ts$/, ".mjs");
  await esbuild.build({ entryPoints: [file], outfile: bundle, bundle: true, format: "esm", platform: "node", logLevel: "warning" });
  return spawnSync("node", [bundle], { cwd, encoding: "utf8", timeout: 300_000 });
}

for (const { line, code } of blocks) {
  test(`README.md line ${line}: runs under ${isDeno ? "Deno" : "Node"}`, async () => {
    const file = `${outDir}/line${line}.ts`;
    writeFileSync(file, code);
    const cwd = mkdtempSync(`${tmpdir()}/retrograd-readme-`);
    const r = await run(file, code.includes('"node:fs"'), cwd);
    assert.is(r.status, 0, `README.md line ${line} failed:\n${r.stdout}\n${r.stderr}`);
    const losses = [...r.stdout.matchAll(/^loss (\d+\.\d+)$/gm)].map((m) => Number(m[1]));
    if (losses.length > 1) assert.ok(losses[losses.length - 1] < losses[0], `losses ${losses.join(", ")}`);
  });
}

test.run();
