// Emits the type declarations of the public API (src/mod.ts and everything it reaches) to
// dist/types/, from the sources, with the TypeScript compiler's API rather than the tsc
// command, so the same build runs under Node and under Deno (`deno task build`).
// Settings: tsconfig.types.json. Usage: node scripts/build_types.mjs
import ts from "typescript";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, resolve } from "node:path";
import { rmSync } from "node:fs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function buildTypes() {
  const configPath = resolve(root, "tsconfig.types.json");
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n")); },
  });
  rmSync(parsed.options.outDir, { recursive: true, force: true }); // no stale declaration of a deleted file ships
  const program = ts.createProgram(parsed.fileNames, parsed.options);
  const result = program.emit(undefined, undefined, undefined, true);
  const diagnostics = [...parsed.errors, ...result.diagnostics]; // type errors: `tsc --noEmit -p .` in npm test
  if (diagnostics.length > 0) {
    throw new Error(`type declarations: ${ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => "\n",
    })}`);
  }
  return { files: parsed.fileNames.length };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) buildTypes();
