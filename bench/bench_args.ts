/**
 * The few helpers the Node bench scripts share: a `--name value` option with its default,
 * the median of a sample (the figure the benches quote), and a line on stderr (their tables;
 * stdout carries the JSON).
 */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const log = (s: string) => process.stderr.write(`${s}\n`);
