/** Which runtime the CLI runs under, for logs and config.json. */
export const VERSION = "0.1.0";

export function runtimeName(): string {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno ? `deno ${deno.version.deno}` : `node ${process.versions.node}`;
}
