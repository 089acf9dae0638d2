/**
 * The npm package as a user gets it: `npm pack` of the built tree, installed from the tarball
 * into an empty directory (the package has no runtime dependency; its one dependency, the
 * WebGPU type declarations, comes from npm's cache). From there a TypeScript consumer
 * (test/package/) is type-checked against the shipped declarations with strict settings and
 * no skipLibCheck, next to a file of mistakes the declarations must reject; it is then run
 * under Node (one training step and an ONNX export) and, with "retrograd" mapped to `npm:retrograd` from the
 * local node_modules, under Deno, which must print the same numbers. The `retrograd` bin works
 * from node_modules/.bin, and the tarball holds what a user needs and nothing else. It drives
 * both runtimes itself, so it runs from the Node pass of the suite.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const isDeno = "Deno" in globalThis;
const packageTest = isDeno ? test.skip : test;
if (isDeno) console.log("package.test: skipped under Deno: the Node pass packs the tarball and runs Deno on it");

const repo = resolve(".");
const dir = mkdtempSync(join(tmpdir(), "retrograd-package-"));

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 300_000, ...opts });
  assert.is(r.status, 0, `${cmd} ${args.join(" ")} (in ${opts.cwd ?? repo}) failed:\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

let tarball = "";
let files: string[] = [];

packageTest("npm pack: the bundle, the CLI, the declarations; no sources, tests, fixtures or runs", () => {
  // The suite has just built the tree; --ignore-scripts skips prepack's second build.
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir]));
  tarball = join(dir, packed.filename);
  files = packed.files.map((f: { path: string }) => f.path);
  for (const needed of ["package.json", "README.md", "dist/retrograd.mjs", "dist/retrograd-onnx.mjs", "dist/cli.mjs", "dist/types/src/mod.d.ts", "dist/types/src/io/onnx.d.ts"]) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}`);
  }
  const stray = files.filter((f) => !/^(package\.json|README\.md|dist\/)/.test(f) || /^dist\/(web|types\/test)\//.test(f));
  assert.equal(stray, [], "files a user does not need");
  const manifest = JSON.parse(run("tar", ["-xOzf", tarball, "package/package.json"]));
  assert.equal(Object.keys(manifest.dependencies ?? {}), ["@webgpu/types"], "runtime dependencies");
});

packageTest("installed from the tarball: type-checked against its declarations, one training step and an ONNX export under Node and Deno", () => {
  const app = join(dir, "app");
  run("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], { cwd: app });
  copyFileSync("test/package/consumer.ts", join(app, "consumer.ts"));
  copyFileSync("test/package/misuse.ts", join(app, "misuse.ts"));
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022",
      lib: ["es2022", "esnext.disposable", "dom"], types: [], skipLibCheck: false, outDir: "out",
    },
    files: ["consumer.ts", "misuse.ts"],
  }));
  run("node", [join(repo, "node_modules/typescript/bin/tsc"), "-p", "."], { cwd: app });
  const node = JSON.parse(run("node", ["out/consumer.js"], { cwd: app }));
  assert.ok(Number.isFinite(node.before) && node.after < node.before, `one SGD step on the batch: ${JSON.stringify(node)}`);
  assert.ok(node.onnxBytes > 1000, "the ONNX encoder loads beside the bundle");

  writeFileSync(join(app, "deno.json"), JSON.stringify({ nodeModulesDir: "manual", imports: { retrograd: "npm:retrograd" } }));
  const deno = JSON.parse(run(join(repo, "node_modules/.bin/deno"), ["run", "--check", "--quiet", "consumer.ts"], { cwd: app }));
  assert.equal(deno, node, "Deno and Node print the same losses");

  const help = run(join(app, "node_modules/.bin/retrograd"), ["--help"], { cwd: app });
  assert.match(help, /usage: retrograd <command>/);
});

test.run();
