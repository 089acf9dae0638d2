/**
 * A short description of any value for an error message: JSON-like, cut at a depth and a
 * length. Values come from hostile files too (a safetensors header nested thousands deep,
 * checkpoint metadata with a megabyte string), where JSON.stringify and String() recurse
 * until the stack overflows; this walks at most a few levels and a few dozen characters.
 */

const DEPTH = 3;

/** `value` as JSON-like text of at most `maxLength` characters ("..." where it was cut). */
export function describeValue(value: unknown, maxLength = 80): string {
  const text = render(value, DEPTH, maxLength + 1);
  return text.length > maxLength ? `${text.slice(0, maxLength - 3)}...` : text;
}

/** Render `value` to about `budget` characters (beyond that the caller cuts it). */
function render(value: unknown, depth: number, budget: number): string {
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value.length > budget ? value.slice(0, budget) : value);
  if (typeof value !== "object") return typeof value === "undefined" ? "undefined" : `<${typeof value}>`;
  const isArray = Array.isArray(value);
  if (depth === 0) return isArray ? "[...]" : "{...}";
  const parts: string[] = [];
  let used = 2;
  const items: [string, unknown][] = isArray
    ? (value as unknown[]).slice(0, budget).map((v) => ["", v])
    : Object.keys(value).slice(0, budget).map((k) => [`${JSON.stringify(k.length > budget ? k.slice(0, budget) : k)}:`, (value as Record<string, unknown>)[k]]);
  for (const [key, item] of items) {
    if (used >= budget) break;
    const part = key + render(item, depth - 1, budget - used);
    parts.push(part);
    used += part.length + 1;
  }
  return isArray ? `[${parts.join(",")}]` : `{${parts.join(",")}}`;
}
