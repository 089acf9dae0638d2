/**
 * The core of src/ stays free of runtime APIs (node:*, Deno.*, DOM), so the same modules
 * run in Node, Deno, browsers and workers. Runtime specifics belong in cli/ and adapters.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync, statSync } from "node:fs";

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = `${dir}/${name}`;
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const forbidden: [RegExp, string][] = [
  [/from\s+["']node:/, "a node: import"],
  [/\bDeno\./, "the Deno namespace"],
  [/\b(document|window)\./, "the DOM"],
  [/\bprocess\.(env|argv|exit|stdout)/, "Node's process"],
  [/\brequire\(/, "require()"],
];

test("src/ uses no runtime-specific API", () => {
  const offenders: string[] = [];
  for (const file of sources("src")) {
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    for (const [pattern, what] of forbidden) if (pattern.test(text)) offenders.push(`${file}: ${what}`);
  }
  assert.equal(offenders, []);
});

test.run();
