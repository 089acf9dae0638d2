/**
 * The kernel build's cache (scripts/build_wasm.mjs): the four AssemblyScript compiles are
 * skipped only when build/kernels.stamp holds the hash of every input and every output is
 * there. Checked on a scratch tree (a copy of assembly/ and the build script, the compiler
 * versions from fake package files): a changed byte in any kernel source, the build script or
 * a compiler version changes the hash, and a missing output or stamp means "build again".
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

// Loaded from the tree (the suite runs at its root), not bundled: bundled into the Node test,
// the script would take the bundle for its own command line and run a build.
const { kernelInputsHash, kernelsUpToDate } = await import(pathToFileURL(resolve("scripts/build_wasm.mjs")).href) as {
  kernelInputsHash(dir: string): Promise<string | null>;
  kernelsUpToDate(hash: string | null, dir: string): Promise<boolean>;
};

const OUTPUTS = ["kernels.wasm", "kernels_shared.wasm", "kernels_relaxed.wasm", "kernels_relaxed_shared.wasm", "kernels_wasm.ts"];

function scratchTree(): string {
  const dir = mkdtempSync(join(tmpdir(), "retrograd-build-cache-"));
  cpSync("assembly", join(dir, "assembly"), { recursive: true });
  mkdirSync(join(dir, "scripts"));
  cpSync("scripts/build_wasm.mjs", join(dir, "scripts/build_wasm.mjs"));
  for (const pkg of ["assemblyscript", "binaryen"]) {
    mkdirSync(join(dir, "node_modules", pkg), { recursive: true });
    writeFileSync(join(dir, "node_modules", pkg, "package.json"), JSON.stringify({ version: "1.0.0" }));
  }
  mkdirSync(join(dir, "build"));
  for (const f of OUTPUTS) writeFileSync(join(dir, "build", f), "x");
  return dir;
}

test("every kernel input moves the hash; outputs and stamp must both be there", async () => {
  const dir = scratchTree();
  try {
    const hash = (await kernelInputsHash(dir))!;
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.is(await kernelInputsHash(dir), hash, "the hash is a function of the inputs");
    assert.not.ok(await kernelsUpToDate(hash, dir), "no stamp yet: build");
    writeFileSync(join(dir, "build/kernels.stamp"), `${hash}\n`);
    assert.ok(await kernelsUpToDate(hash, dir), "stamp and outputs: up to date");

    const changed = new Set<string>([hash]);
    const expectNewHash = async (what: string) => {
      const h = (await kernelInputsHash(dir))!;
      assert.not.ok(changed.has(h), `${what} must change the hash`);
      assert.not.ok(await kernelsUpToDate(h, dir), `${what}: not up to date`);
      changed.add(h);
    };
    for (const f of readdirSync(join(dir, "assembly")).filter((f) => f.endsWith(".ts"))) {
      appendFileSync(join(dir, "assembly", f), " ");
      await expectNewHash(`a byte added to assembly/${f}`);
    }
    appendFileSync(join(dir, "scripts/build_wasm.mjs"), " ");
    await expectNewHash("a byte added to the build script");
    writeFileSync(join(dir, "node_modules/binaryen/package.json"), JSON.stringify({ version: "1.0.1" }));
    await expectNewHash("another Binaryen version");
    writeFileSync(join(dir, "node_modules/assemblyscript/package.json"), JSON.stringify({ version: "1.0.1" }));
    await expectNewHash("another AssemblyScript version");

    const now = (await kernelInputsHash(dir))!;
    writeFileSync(join(dir, "build/kernels.stamp"), `${now}\n`);
    assert.ok(await kernelsUpToDate(now, dir));
    rmSync(join(dir, "build/kernels_relaxed_shared.wasm"));
    assert.not.ok(await kernelsUpToDate(now, dir), "a missing output: build");
    rmSync(join(dir, "node_modules/binaryen"), { recursive: true });
    assert.is(await kernelInputsHash(dir), null, "an unreadable compiler version: no cache");
    assert.not.ok(await kernelsUpToDate(null, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
