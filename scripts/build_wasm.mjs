// Builds the WebAssembly compute kernels (assembly/index.ts) with AssemblyScript.
//
// Outputs, each in a plain SIMD128 build and a relaxed-SIMD build (fused multiply-add where
// the CPU has it; see assembly/simd.ts):
//   build/kernels.wasm, build/kernels_relaxed.wasm
//       the module (imports only env.memory, non-shared)
//   build/kernels_shared.wasm, build/kernels_relaxed_shared.wasm
//       the same kernels importing a *shared* env.memory (maximum SHARED_MAX_PAGES), for the
//       multi-threaded CPU backend
//   build/kernels_wasm.ts
//       `export const kernelsWasmBase64 = { plain, plainShared, relaxed, relaxedShared };`
//
// Memory layout contract: the module's static data (AssemblyScript's Math lookup
// tables, a few KiB) must lie entirely below byte 65536, because the TypeScript
// allocator hands out linear memory from 65536 upward. The kernels themselves use
// no static arrays and never allocate; this script parses the data section and
// fails the build if any segment reaches past 65536, or if the module imports
// anything but env.memory.
//
// The four compiles take about 20 s of CPU, so they are skipped when build/kernels.stamp holds
// the hash of everything they are made from (assembly/*.ts, this script, the AssemblyScript
// and Binaryen versions) and every output is there: `npm run train` then starts in seconds.
//
// RG_WASM_NAMES=1 keeps the function names (asc --debug), so that a V8 CPU profile
// (`node --cpu-prof`) charges time to each kernel function instead of `wasm-function[16]`;
// for profiling only (the stamp records it, so the next plain build compiles again).
//
// Usage: [RG_WASM_NAMES=1] node scripts/build_wasm.mjs
import { readFile, writeFile, mkdir, readdir, access } from "node:fs/promises";
import { createHash } from "node:crypto";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, resolve } from "node:path";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const STATIC_LIMIT = 65536;
/** Maximum size of the shared memory in 64 KiB pages (4 GiB, the wasm32 limit). */
export const SHARED_MAX_PAGES = 65536;

const OUTPUTS = ["kernels.wasm", "kernels_shared.wasm", "kernels_relaxed.wasm", "kernels_relaxed_shared.wasm", "kernels_wasm.ts"];
const STAMP = "build/kernels.stamp";
const KEEP_NAMES = process.env.RG_WASM_NAMES === "1";

/**
 * Hash of what the kernels of the tree at `dir` are built from; null when a compiler version
 * cannot be read (then always build).
 */
export async function kernelInputsHash(dir = root) {
  const hash = createHash("sha256");
  const sources = (await readdir(resolve(dir, "assembly"))).filter((f) => f.endsWith(".ts")).sort();
  for (const f of sources) hash.update(`${f}\0`).update(await readFile(resolve(dir, "assembly", f))).update("\0");
  hash.update(await readFile(resolve(dir, "scripts/build_wasm.mjs")));
  hash.update(`names=${KEEP_NAMES}\0`);
  for (const pkg of ["assemblyscript", "binaryen"]) {
    try {
      hash.update(`${pkg}@${JSON.parse(await readFile(resolve(dir, "node_modules", pkg, "package.json"), "utf8")).version}\0`);
    } catch {
      return null;
    }
  }
  return hash.digest("hex");
}

/** Are the kernels of the tree at `dir` there and built from exactly the inputs hashed to `hash`? */
export async function kernelsUpToDate(hash, dir = root) {
  if (hash === null) return false;
  try {
    await Promise.all(OUTPUTS.map((f) => access(resolve(dir, "build", f))));
    return (await readFile(resolve(dir, STAMP), "utf8")).trim() === hash;
  } catch {
    return false;
  }
}

export async function buildWasm() {
  const hash = await kernelInputsHash();
  if (await kernelsUpToDate(hash)) {
    const plain = await readFile(resolve(root, "build/kernels.wasm"));
    return { bytes: plain.length, path: resolve(root, "build/kernels.wasm"), staticEnd: checkDataSegments(plain), cached: true };
  }
  const ascModule = await import("assemblyscript/asc");
  const asc = typeof ascModule.main === "function" ? ascModule : ascModule.default;
  await mkdir(resolve(root, "build"), { recursive: true });
  const variants = {};
  let plain = null, staticEnd = 0;
  for (const relaxed of [false, true]) {
    for (const shared of [false, true]) {
      const name = `kernels${relaxed ? "_relaxed" : ""}${shared ? "_shared" : ""}`;
      const wasm = await compile(asc, relaxed, resolve(root, `build/${name}.wasm`), shared);
      const end = checkModule(wasm, shared, relaxed);
      if (!relaxed && !shared) { plain = wasm; staticEnd = end; }
      variants[(relaxed ? "relaxed" : "plain") + (shared ? "Shared" : "")] = Buffer.from(wasm).toString("base64");
    }
  }
  const fields = Object.entries(variants).map(([k, v]) => `  ${k}: "${v}",`).join("\n");
  await writeFile(resolve(root, "build/kernels_wasm.ts"),
    `/** The kernels, base64: plain SIMD128 and relaxed-SIMD builds, each non-shared and shared. */\n` +
    `export const kernelsWasmBase64 = {\n${fields}\n};\n`);
  // Written last: a build stopped half-way leaves no stamp, so the next one compiles again.
  if (hash !== null) await writeFile(resolve(root, STAMP), `${hash}\n`);
  return { bytes: plain.length, path: resolve(root, "build/kernels.wasm"), staticEnd, cached: false };
}

async function compile(asc, relaxed, outWasm, shared) {
  const args = [
    resolve(root, "assembly/index.ts"),
    "-O3",
    ...(KEEP_NAMES ? ["--debug"] : []),
    "--runtime", "stub",
    "--noAssert",
    "--enable", (relaxed ? "simd,relaxed-simd" : "simd") + (shared ? ",threads" : ""),
    "--importMemory",
    "--initialMemory", "1",
    ...(shared ? ["--sharedMemory", "--maximumMemory", String(SHARED_MAX_PAGES)] : []),
    "--use", "abort=",
    "--outFile", outWasm,
  ];
  let stderrText = "";
  const stderr = { write(s) { stderrText += typeof s === "string" ? s : new TextDecoder().decode(s); return true; } };
  const stdout = { write(s) { return true; } };
  const { error } = await asc.main(args, { stdout, stderr });
  if (error) {
    throw new Error(`asc failed: ${error.message}\n${stderrText}`);
  }
  return await readFile(outWasm);
}

// Verify imports (only env.memory) and that every active data segment ends below STATIC_LIMIT.
// The shared variant must also declare its imported memory shared (limits flag 0x03).
function checkModule(buf, shared, relaxed) {
  // The engine running the build may lack relaxed SIMD (Node 20 without a flag): such a
  // module is then checked by its sections only, and instantiated where it is supported.
  const mod = relaxed && !WebAssembly.validate(buf) ? null : new WebAssembly.Module(buf);
  if (!mod) return checkDataSegments(buf);
  const imports = WebAssembly.Module.imports(mod);
  if (imports.length !== 1 || imports[0].module !== "env" || imports[0].name !== "memory" || imports[0].kind !== "memory") {
    throw new Error(`kernels.wasm must import only env.memory, got ${JSON.stringify(imports)}`);
  }
  if (shared) {
    const memory = new WebAssembly.Memory({ initial: 2, maximum: SHARED_MAX_PAGES, shared: true });
    new WebAssembly.Instance(mod, { env: { memory } }); // throws if the import is not shared
  }
  return checkDataSegments(buf);
}

function checkDataSegments(buf) {
  let pos = 8;
  const u8 = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const leb = () => { let r = 0, s = 0, b; do { b = u8[pos++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return r >>> 0; };
  const sleb = () => { let r = 0, s = 0, b; do { b = u8[pos++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); if (s < 32 && (b & 0x40)) r |= -1 << s; return r; };
  let maxEnd = 0;
  while (pos < u8.length) {
    const id = u8[pos++];
    const size = leb();
    const end = pos + size;
    if (id === 11) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const flags = leb();
        if (flags === 1) { const n = leb(); pos += n; continue; } // passive
        if (flags === 2) leb(); // memory index
        const op = u8[pos++];
        if (op !== 0x41) throw new Error(`unexpected data segment offset expression 0x${op.toString(16)}`);
        const off = sleb();
        if (u8[pos++] !== 0x0b) throw new Error("bad data segment offset expression");
        const n = leb();
        pos += n;
        maxEnd = Math.max(maxEnd, off + n);
      }
    }
    pos = end;
  }
  if (maxEnd > STATIC_LIMIT) throw new Error(`static data reaches byte ${maxEnd} (limit ${STATIC_LIMIT})`);
  return maxEnd;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  buildWasm().then(
    (r) => console.log(`${r.cached ? "up to date" : "built"}: ${r.path} (${r.bytes} bytes, static data ends at byte ${r.staticEnd})`),
    (e) => { console.error(e.message ?? e); process.exit(1); },
  );
}
