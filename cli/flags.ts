/**
 * Flags for the `retrograd` commands: each command declares its flags once (name, type,
 * default, help, validation); the parser reads `--name value`, `--name=value` and
 * `--no-name`, rejects unknown flags (with a suggestion) and bad values with a message that
 * names the flag, and the same table prints `--help`.
 */
import { RetrogradError } from "../src/errors.ts";

export class UsageError extends RetrogradError {}

export interface Flag {
  name: string;
  type: "number" | "int" | "string" | "boolean" | "list";
  default: string | number | boolean | undefined;
  help: string;
  choices?: readonly string[];
  min?: number;
  /** The value must be strictly greater than min. */
  exclusiveMin?: boolean;
  max?: number;
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function convert(flag: Flag, raw: string): string | number | boolean | string[] {
  const bad = (why: string) => new UsageError(`--${flag.name}: ${why}, got ${JSON.stringify(raw)}`);
  switch (flag.type) {
    case "string":
      if (flag.choices && !flag.choices.includes(raw)) throw bad(`must be one of ${flag.choices.join(", ")}`);
      return raw;
    case "list":
      return raw.split(",").filter(Boolean);
    case "boolean":
      if (!["true", "false", "1", "0"].includes(raw)) throw bad("must be true or false");
      return raw === "true" || raw === "1";
    case "int":
    case "number": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) throw bad("must be a number");
      if (flag.type === "int" && !Number.isInteger(v)) throw bad("must be an integer");
      if (flag.min !== undefined && (flag.exclusiveMin ? v <= flag.min : v < flag.min)) {
        throw bad(`must be ${flag.exclusiveMin ? ">" : "≥"} ${flag.min}`);
      }
      if (flag.max !== undefined && v > flag.max) throw bad(`must be ≤ ${flag.max}`);
      return v;
    }
  }
}

/**
 * Parse argv against `flags`; positional arguments are returned under "_", and the names of
 * the flags given on the command line (not defaulted) under "_given".
 */
export function parseFlags(argv: readonly string[], flags: readonly Flag[]): FlagValues & { _: string[]; _given: string[] } {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const values: FlagValues & { _: string[]; _given: string[] } = { _: [], _given: [] };
  // A list's default is written as the command line would give it ("0,1,2") and read the same way.
  for (const f of flags) values[f.name] = f.type === "list" && typeof f.default === "string" ? convert(f, f.default) : f.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      values._.push(arg);
      continue;
    }
    let [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    let flag = byName.get(name);
    if (!flag && name.startsWith("no-") && byName.get(name.slice(3))?.type === "boolean") {
      flag = byName.get(name.slice(3))!;
      name = flag.name;
      inline = "false";
    }
    if (!flag) {
      const closest = flags.map((f) => f.name).sort((a, b) => editDistance(name, a) - editDistance(name, b))[0];
      const hint = closest && editDistance(name, closest) <= 3 ? ` (did you mean --${closest}?)` : "";
      throw new UsageError(`unknown flag --${name}${hint}; see --help`);
    }
    values._given.push(name);
    if (flag.type === "boolean" && inline === undefined) {
      values[name] = true;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    values[name] = convert(flag, raw);
  }
  return values;
}

export function helpText(command: string, summary: string, flags: readonly Flag[]): string {
  const rows = flags.map((f) => {
    const choices = f.choices?.join("|") ?? "";
    const value = f.type === "boolean" ? "" : f.choices && choices.length <= 24 ? ` <${choices}>` : ` <${f.type}>`;
    const help = f.choices && choices.length > 24 ? `${f.help}: ${f.choices.join(", ")}` : f.help;
    const def = f.default === undefined ? "" : ` (default: ${f.type === "boolean" && f.default ? "on; --no-" + f.name + " turns it off" : f.default})`;
    return [`  --${f.name}${value}`, `${help}${def}`];
  });
  const width = Math.max(...rows.map(([a]) => a.length)) + 2;
  return `retrograd ${command}: ${summary}\n\n${rows.map(([a, b]) => a.padEnd(width) + b).join("\n")}\n`;
}
