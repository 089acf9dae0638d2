/**
 * The dithered-backprop table of docs/variants.md from finished `retrograd train` runs: each
 * run directory's config.json says its condition (no dither, or the Δ rule and factor) and
 * its metrics.jsonl's last epoch record the test accuracy and the epoch's mean sparsity per
 * dithered layer. Runs of one condition (different seeds) are pooled: mean ± standard
 * deviation. Prints a Markdown table on stderr and JSON on stdout.
 *
 *   deno run -A bench/dither_report.ts runs/variants/dither-* > docs/data/variants/dither.json
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseRecord } from "../src/io/records.ts";

interface Run {
  dir: string;
  condition: string;
  seed: number;
  testAccuracy: number;
  sparsity: Record<string, number>;
}

function readRun(dir: string): Run {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const dither = config.train.dither as { rule: string; factor: number } | undefined;
  const epochs = readFileSync(join(dir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean)
    .map((line) => parseRecord(line) as { type: string; testAccuracy: number; measures?: Record<string, number> })
    .filter((r) => r.type === "epoch");
  if (epochs.length === 0) throw new Error(`${dir}: no finished epoch in metrics.jsonl`);
  const last = epochs[epochs.length - 1];
  const sparsity = Object.fromEntries(Object.entries(last.measures ?? {}).filter(([k]) => k.startsWith("dither.")));
  return { dir, condition: dither ? `${dither.rule} × ${dither.factor}` : "baseline", seed: config.train.seed, testAccuracy: last.testAccuracy, sparsity };
}

const meanStd = (xs: number[]) => {
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std: sd, n: xs.length };
};

const runs = process.argv.slice(2).map(readRun);
const conditions = [...new Set(runs.map((r) => r.condition))];
const table = conditions.map((condition) => {
  const these = runs.filter((r) => r.condition === condition);
  const layers = Object.keys(these[0].sparsity);
  return {
    condition, seeds: these.map((r) => r.seed),
    testAccuracy: meanStd(these.map((r) => r.testAccuracy)),
    sparsity: Object.fromEntries(layers.map((l) => [l.slice("dither.".length), meanStd(these.map((r) => r.sparsity[l]))])),
  };
});
const pct = (s: { mean: number; std: number }) => `${(100 * s.mean).toFixed(2)} ± ${(100 * s.std).toFixed(2)}`;
console.error("| condition | seeds | test accuracy % | mean sparsity % (over layers) | least sparse layer % |");
console.error("|---|---|---|---|---|");
for (const row of table) {
  const layers = Object.entries(row.sparsity).filter(([l]) => l !== "mean");
  const least = layers.sort((a, b) => a[1].mean - b[1].mean)[0];
  console.error(`| ${row.condition} | ${row.seeds.join(", ")} | ${pct(row.testAccuracy)} | ${row.sparsity.mean ? pct(row.sparsity.mean) : "—"} | ${least ? `${least[0]}: ${pct(least[1])}` : "—"} |`);
}
console.log(JSON.stringify({ runs, table }, null, 1));
