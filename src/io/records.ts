/**
 * JSON for metric records (metrics.jsonl lines, checkpoint metadata, summaries) with the
 * non-finite numbers spelled out: NaN, Infinity and -Infinity are written as the strings
 * "NaN", "Infinity" and "-Infinity" (JSON has no such numbers, and JSON.stringify would write
 * null, which reads back as "no value"), and read back as numbers. Any JSON reader sees
 * valid JSON; Python's float("NaN") and pandas read the strings as the floats they name.
 */

const SPELLED: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

/** JSON.stringify, with non-finite numbers as "NaN" / "Infinity" / "-Infinity". */
export function stringifyRecord(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v, indent);
}

/** JSON.parse, with the strings "NaN", "Infinity" and "-Infinity" read back as numbers. */
export function parseRecord(text: string): unknown {
  return JSON.parse(text, (_key, v) => typeof v === "string" && Object.hasOwn(SPELLED, v) ? SPELLED[v] : v);
}
