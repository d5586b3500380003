import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VaultError } from "../core/errors.js";

/**
 * The web UI at `/ui/`: the files `scripts/build-ui.mjs` writes to `<outDir>/ui/` (this module is
 * `<outDir>/src/http/ui-routes.js`), read once at start and served from memory with headers that
 * let the page run nothing but its own script and style, talk to nothing but the vault, and be
 * framed by no one. The page holds the user's token in memory only and sends it as a Bearer
 * header: no cookie, so another site cannot make a browser act with it. No hook is added: the
 * routes cost other requests nothing.
 */
export const UI_DIRECTORY = new URL("../../ui/", import.meta.url);

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** A file name the build writes: no directory, nothing hidden. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
/** Built names carry their content's hash (`main-3F2A9C1B.js`): cached for good. */
const HASHED = /-[A-Z0-9]{8,}\.[a-z0-9]+$/;

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  readonly cacheControl: string;
}

/** Whether `npm run build` wrote the UI (what the start-up line says). */
export function uiIsBuilt(directory: URL = UI_DIRECTORY): boolean {
  return existsSync(new URL("index.html", directory));
}

/** The built UI's files by name, or undefined when it was not built. */
function loadAssets(directory: URL): Map<string, Asset> | undefined {
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return undefined;
  }
  if (!names.includes("index.html")) return undefined;
  const assets = new Map<string, Asset>();
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type === undefined || !FILE_NAME.test(name)) continue;
    const body = readFileSync(new URL(name, directory));
    assets.set(name, {
      body,
      type,
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
      cacheControl: HASHED.test(name) ? "public, max-age=31536000, immutable" : "no-cache",
    });
  }
  return assets;
}

export function registerUiRoutes(app: FastifyInstance, directory: URL = UI_DIRECTORY): void {
  const assets = loadAssets(directory);
  const route = { schema: { hide: true } };

  // Relative, so that it stays right behind a proxy that serves the vault under a path.
  app.route({ method: ["GET", "HEAD"], url: "/ui", ...route, handler: async (_request, reply) => reply.code(301).headers(SECURITY_HEADERS).header("location", "ui/").send() });

  const serve = (name: string, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (assets === undefined) {
      return reply
        .code(503)
        .headers(SECURITY_HEADERS)
        .header("cache-control", "no-store")
        .type("text/plain; charset=utf-8")
        .send(`The web UI is not built in this installation: run \`npm run build\` (it writes ${fileURLToPath(directory)}), then restart the vault.\n`);
    }
    const asset = assets.get(name);
    if (asset === undefined) throw new VaultError("not_found", `no such file of the web UI: ${name}`);
    reply.headers(SECURITY_HEADERS).header("cache-control", asset.cacheControl).header("etag", asset.etag);
    if (request.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).header("content-length", asset.body.length).send(request.method === "HEAD" ? undefined : asset.body);
  };
  app.route({ method: ["GET", "HEAD"], url: "/ui/", ...route, handler: async (request, reply) => serve("index.html", request, reply) });
  app.route({
    method: ["GET", "HEAD"],
    url: "/ui/:file",
    ...route,
    handler: async (request, reply) => serve((request.params as { file: string }).file, request, reply),
  });
  // Other methods: 405, out of the API description like the rest.
  for (const url of ["/ui", "/ui/", "/ui/:file"]) {
    app.route({
      method: ["PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
      url,
      ...route,
      handler: async (request) => {
        throw new VaultError("method_not_allowed", `method ${request.method} not allowed on the web UI`, { allow: ["GET", "HEAD"] });
      },
    });
  }
}
