import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Fastify, { type FastifyInstance } from "fastify";
import { isVaultError } from "../core/errors.js";
import { STATUS_BY_KIND } from "./error-response.js";
import { registerUiRoutes } from "./ui-routes.js";

const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async function serverFor(directory: URL): Promise<FastifyInstance> {
  const app = Fastify();
  app.setErrorHandler(async (error, _request, reply) => reply.code(isVaultError(error) ? STATUS_BY_KIND[error.kind] : 500).send({ error: String(error) }));
  registerUiRoutes(app, directory);
  await app.ready();
  return app;
}

describe("the web UI's routes", () => {
  let dir: string;
  let built: FastifyInstance;
  let missing: FastifyInstance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vault-ui-routes-"));
    await writeFile(join(dir, "index.html"), '<!doctype html><script type="module" src="main-ABCDEFGH.js"></script>');
    await writeFile(join(dir, "main-ABCDEFGH.js"), "console.log(1);\n");
    await writeFile(join(dir, ".hidden.js"), "secret");
    built = await serverFor(pathToFileURL(`${dir}/`));
    missing = await serverFor(pathToFileURL(join(dir, "not-there/")));
  });
  after(async () => {
    await built.close();
    await missing.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("/ui redirects to /ui/ (relatively, so a path prefix in front stays)", async () => {
    const response = await built.inject({ url: "/ui" });
    assert.equal(response.statusCode, 301);
    assert.equal(response.headers["location"], "ui/");
  });

  it("serves the page and its assets with the strict headers; hashed assets are cached for good", async () => {
    const page = await built.inject({ url: "/ui/" });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(page.headers["content-security-policy"], CSP);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.equal(page.headers["referrer-policy"], "no-referrer");
    assert.equal(page.headers["cache-control"], "no-cache");
    assert.match(page.body, /main-ABCDEFGH\.js/);
    const again = await built.inject({ url: "/ui/", headers: { "if-none-match": String(page.headers["etag"]) } });
    assert.equal(again.statusCode, 304);

    const script = await built.inject({ url: "/ui/main-ABCDEFGH.js" });
    assert.equal(script.statusCode, 200);
    assert.equal(script.headers["content-type"], "text/javascript; charset=utf-8");
    assert.equal(script.headers["cache-control"], "public, max-age=31536000, immutable");
    assert.equal(script.headers["content-security-policy"], CSP);

    const head = await built.inject({ method: "HEAD", url: "/ui/" });
    assert.equal(head.statusCode, 200);
    assert.equal(head.body, "");
  });

  it("nothing else: unknown and hidden files are 404, other methods 405", async () => {
    assert.equal((await built.inject({ url: "/ui/other.js" })).statusCode, 404);
    assert.equal((await built.inject({ url: "/ui/.hidden.js" })).statusCode, 404);
    assert.equal((await built.inject({ url: "/ui/..%2Fpackage.json" })).statusCode, 404);
    const put = await built.inject({ method: "PUT", url: "/ui/" });
    assert.equal(put.statusCode, 405);
  });

  it("a vault whose UI was not built says how to build it", async () => {
    const response = await missing.inject({ url: "/ui/" });
    assert.equal(response.statusCode, 503);
    assert.match(response.body, /not built.*npm run build/);
    assert.equal(response.headers["content-security-policy"], CSP);
  });
});
