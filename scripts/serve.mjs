// The browser demo's server: `npm run serve [-- --port 8080]` serves the demo page (web/),
// the bundles (dist/) and the Debian datasets (/datasets/ → /usr/share/datasets/, read-only)
// on 127.0.0.1, with the two headers that make the page cross-origin isolated
// (SharedArrayBuffer, wasm threads). GET and HEAD only; a path that escapes its root, or
// names a directory, is a 404. Tests import startServer() and add mounts of their own.
import { createServer } from "node:http";
import { open, realpath } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { extname, join, resolve, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm", ".svg": "image/svg+xml",
  ".png": "image/png", ".map": "application/json",
};

/** URL prefix → directory on disk. "/" serves web/ (index.html at the root). */
export const DEFAULT_MOUNTS = { "/dist/": "dist", "/datasets/": "/usr/share/datasets", "/": "web" };

/** Start the server; resolves to { server, port, url, close() } once it listens. */
export async function startServer({ port = 8080, host = "127.0.0.1", mounts = DEFAULT_MOUNTS, log = false } = {}) {
  const roots = Object.entries(mounts)
    .map(([prefix, dir]) => [prefix, resolve(dir)])
    .sort((a, b) => b[0].length - a[0].length); // longest prefix first
  const server = createServer(async (req, res) => {
    const headers = {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cross-Origin-Resource-Policy": "same-origin",
      "X-Content-Type-Options": "nosniff",
      "Cache-Control": "no-store",
    };
    const fail = (status, text) => {
      res.writeHead(status, { ...headers, "Content-Type": "text/plain; charset=utf-8" });
      res.end(req.method === "HEAD" ? undefined : `${status} ${text}\n`);
      if (log) console.log(`${status} ${req.method} ${req.url}`);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return fail(405, "method not allowed");
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return fail(400, "bad request");
    }
    if (path === "/") path = "/index.html";
    const mount = roots.find(([prefix]) => path.startsWith(prefix));
    if (!mount || path.includes("\0")) return fail(404, "not found");
    const [prefix, root] = mount;
    const file = resolve(join(root, path.slice(prefix.length)));
    let handle;
    try {
      // Resolve links too: the real file must still lie inside the mount's real root.
      const [realRoot, realFile] = await Promise.all([realpath(root), realpath(file)]);
      if (!realFile.startsWith(realRoot + sep)) return fail(404, "not found");
      handle = await open(realFile, "r");
      const stat = await handle.stat();
      if (!stat.isFile()) return fail(404, "not found");
      res.writeHead(200, {
        ...headers,
        "Content-Type": TYPES[extname(realFile)] ?? "application/octet-stream",
        "Content-Length": stat.size,
      });
      if (req.method === "HEAD") return res.end();
      const stream = handle.createReadStream();
      handle = undefined; // the stream closes it
      if (log) console.log(`200 ${req.method} ${req.url}`);
      // pipeline, not pipe: when the client goes away mid-download it destroys the file stream,
      // which closes the file (pipe left it open until garbage collection). The rejection then
      // says only that the client left.
      await pipeline(stream, res).catch(() => {});
    } catch {
      fail(404, "not found");
    } finally {
      await handle?.close();
    }
  });
  await new Promise((ok, bad) => {
    server.once("error", bad);
    server.listen(port, host, ok);
  });
  const actual = server.address().port;
  return {
    server,
    port: actual,
    url: `http://${host}:${actual}/`,
    close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--port");
  const port = at >= 0 ? Number(args[at + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: --port must be an integer 0..65535, got ${args[at + 1]}`);
    process.exit(2);
  }
  const { url } = await startServer({ port, log: args.includes("--verbose") });
  console.log(`retrograd demo at ${url} (cross-origin isolated; Ctrl-C stops)`);
}
