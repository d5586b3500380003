/**
 * `/docs`: the OpenAPI description is a valid OpenAPI 3.1 document that describes the object API,
 * cache administration, `/health`, `/ready` and `/metrics` and none of the proxy surfaces; Swagger
 * UI is served by the vault itself, loading nothing from elsewhere; and the description does not
 * drift from the code — real answers of a vault with a token, before and after serialization, are
 * checked against the schema the description gives for their path, method and status.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { parse as parseYaml } from "yaml";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { Validator } from "@seriousme/openapi-schema-validator";
import { TokenAuthenticator } from "../../src/auth/token-authenticator.js";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { ArtifactCache } from "../../src/cache/artifact-cache.js";
import { parseConfig } from "../../src/config/schema.js";
import { LocalCoordinator } from "../../src/coordination/local-coordinator.js";
import { Readiness, READY } from "../../src/core/readiness.js";
import { buildServer } from "../../src/http/server.js";
import { localExposition, VaultMetrics } from "../../src/metrics/vault-metrics.js";
import { ObjectService } from "../../src/objects/object-service.js";
import { MemoryDriver } from "../../src/storage/memory-driver.js";
import { createBackends } from "../../src/upstreams/backend-types.js";
import type { Backend } from "../../src/upstreams/backend.js";
import { rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer } from "../support/origin-server.js";
import { waitFor } from "../support/process.js";
import { startTestVault, tokenRecords, type TestVault } from "../support/test-vault.js";

type Json = Record<string, unknown>;

interface Operation {
  readonly tags?: string[];
  readonly security?: Array<Record<string, string[]>>;
  readonly parameters?: Array<{ name: string; in: string }>;
  readonly requestBody?: unknown;
  readonly responses: Record<string, { description: string; content?: Record<string, { schema: Json }> }>;
}

interface OpenApiDocument {
  readonly openapi: string;
  readonly info: { title: string; version: string };
  readonly paths: Record<string, Record<string, Operation>>;
  readonly components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

/** What the description must describe, with the scope each operation needs (undefined: public). */
const DOCUMENTED: ReadonlyArray<readonly [method: string, path: string, scope: string | undefined]> = [
  ["get", "/objects", "read"],
  ["put", "/objects/{key}", "write"],
  ["get", "/objects/{key}", "read"],
  ["head", "/objects/{key}", "read"],
  ["delete", "/objects/{key}", "delete"],
  ["get", "/admin/cache/entries", "admin"],
  ["delete", "/admin/cache/entries", "admin"],
  ["get", "/admin/cache/stats", "admin"],
  ["get", "/admin/cache/fills", "admin"],
  ["get", "/admin/backends", "read"],
  ["get", "/health", undefined],
  ["head", "/health", undefined],
  ["get", "/ready", undefined],
  ["head", "/ready", undefined],
  ["get", "/metrics", undefined],
];

/** Where described paths may be: the object API, administration, operations. Never a proxy surface. */
const API_PATHS = /^\/(?:objects(?:\/|$)|admin\/|health$|ready$|metrics$)/;

const BACKENDS_YAML = (origin: string) => [
  { type: "http", name: "files", config: { prefix: "/files/", base_url: `${origin}/dist`, mutable: ["meta/**"], timeout: 5, retries: 1 } },
];

describe("/docs of a vault started from its config", () => {
  let origin: OriginServer;
  let vault: TestVault;
  let doc: OpenApiDocument;

  before(async () => {
    origin = await new OriginServer().start();
    vault = await startTestVault({
      // Anonymous requests: 3 a minute per address, on the routes that are limited.
      extraYaml: ["rate_limit: {per_token_per_minute: 1000, per_ip_per_minute: 3}", `backends: ${JSON.stringify(BACKENDS_YAML(origin.url))}`].join("\n"),
    });
    const response = await rawRequest(vault.url, "/docs/json");
    assert.equal(response.status, 200);
    assert.match(response.header("content-type") ?? "", /^application\/json/);
    doc = response.json<OpenApiDocument>();
  });
  after(async () => {
    await vault?.close();
    await origin?.stop();
  });

  test("/docs/json is a valid OpenAPI 3.1 document, /docs/yaml the same one", async () => {
    const result = await new Validator().validate(doc as unknown as Json);
    assert.deepEqual(result.errors, undefined, JSON.stringify(result.errors, null, 2));
    assert.equal(result.valid, true);
    assert.match(doc.openapi, /^3\.1\./);
    assert.equal(doc.info.title, "artifact-vault");
    assert.match(doc.info.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(doc.components.securitySchemes["bearerAuth"], { ...doc.components.securitySchemes["bearerAuth"], type: "http", scheme: "bearer" });

    const yaml = await rawRequest(vault.url, "/docs/yaml");
    assert.equal(yaml.status, 200);
    assert.match(yaml.header("content-type") ?? "", /^application\/x-yaml/);
    assert.deepEqual(parseYaml(yaml.body.toString("utf8")), doc);
  });

  test("every operation of the API is described, with the token it needs; no proxy route is", () => {
    for (const [method, path, scope] of DOCUMENTED) {
      const operation = doc.paths[path]?.[method];
      assert.ok(operation !== undefined, `${method.toUpperCase()} ${path} is described`);
      assert.equal(operation.tags?.length, 1, `${method.toUpperCase()} ${path} has a tag`);
      assert.deepEqual(operation.security, scope === undefined ? undefined : [{ bearerAuth: [scope] }], `${method.toUpperCase()} ${path} needs ${scope ?? "no token"}`);
      for (const [status, response] of Object.entries(operation.responses)) {
        assert.ok(response.description.length > 0, `${method.toUpperCase()} ${path} ${status} says what it means`);
        if (scope !== undefined && /^[45]/.test(status) && method !== "head") assert.ok(response.content?.["application/json"] !== undefined, `${status} has the error envelope`);
      }
      if (scope !== undefined) assert.ok(operation.responses["401"] !== undefined && operation.responses["403"] !== undefined, `${path}: 401 and 403`);
    }
    for (const path of Object.keys(doc.paths)) assert.match(path, API_PATHS, `only the API is described, not ${path}`);
    // The key of `/objects/{key}` is a path parameter, and a PUT's body is the object.
    assert.deepEqual(
      doc.paths["/objects/{key}"]?.["get"]?.parameters?.filter((parameter) => parameter.in === "path").map((parameter) => parameter.name),
      ["key"],
    );
    assert.ok(doc.paths["/objects/{key}"]?.["put"]?.requestBody !== undefined);
    // Shared answers are components, referenced.
    for (const name of ["Error", "ObjectInfo", "ObjectList", "CacheEntry", "CacheStats", "Health", "Readiness"]) assert.ok(doc.components.schemas[name] !== undefined, name);
    assert.deepEqual(doc.paths["/objects"]?.["get"]?.responses["404"], undefined);
    assert.deepEqual(doc.paths["/objects"]?.["get"]?.responses["401"]?.content?.["application/json"]?.schema, { $ref: "#/components/schemas/Error" });
  });

  test("/docs is Swagger UI served by the vault itself: its files load, nothing comes from elsewhere", async () => {
    for (const page of ["/docs", "/docs/"]) {
      const response = await rawRequest(vault.url, page);
      assert.equal(response.status, 200, page);
      assert.match(response.header("content-type") ?? "", /^text\/html/);
      const html = response.body.toString("utf8");
      assert.doesNotMatch(html, /(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i, "no remote URL in the page");
      const csp = response.header("content-security-policy") ?? "";
      assert.match(csp, /default-src 'none'/);
      assert.doesNotMatch(csp, /https?:|\*/, "the CSP allows this origin only");
      const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? "");
      assert.ok(assets.some((asset) => asset.endsWith("swagger-ui-bundle.js")) && assets.some((asset) => asset.endsWith("swagger-ui.css")), "the page loads Swagger UI's script and style");
      for (const asset of assets) {
        const url = new URL(asset, `${vault.url}${page}`);
        assert.equal(url.origin, vault.url, `${asset} comes from the vault`);
        const loaded = await rawRequest(vault.url, url.pathname);
        assert.equal(loaded.status, 200, `${url.pathname} loads`);
        assert.ok(loaded.body.length > 0, `${url.pathname} is not empty`);
        if (asset.endsWith(".js")) assert.match(loaded.header("content-type") ?? "", /javascript/, asset);
        if (asset.endsWith(".css")) assert.match(loaded.header("content-type") ?? "", /^text\/css/, asset);
      }
    }
    // The page reads the description next to it.
    const initializer = await rawRequest(vault.url, "/docs/static/swagger-initializer.js");
    assert.match(initializer.body.toString("utf8"), /resolveUrl\('\.\/json'\)/);
    assert.match(initializer.body.toString("utf8"), /validatorUrl: null/);
  });

  test("the docs need no token and are not rate-limited; other methods get the envelope", async () => {
    // Far past the 3 anonymous requests a minute the limited routes allow an address.
    for (let i = 0; i < 8; i++) assert.equal((await rawRequest(vault.url, "/docs/json")).status, 200);
    const wrong = await rawRequest(vault.url, "/docs/json", { method: "POST" });
    assert.equal(wrong.status, 404);
    assert.deepEqual(Object.keys(wrong.json<Json>()), ["error"]);
  });
});

describe("docs.enabled", () => {
  test("is on by default; an unknown key under docs is named", () => {
    const parsed = parseConfig({});
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.docs, { enabled: true });
    const wrong = parseConfig({ docs: { enable: false } });
    assert.ok(!wrong.ok);
    assert.deepEqual(wrong.issues, [{ path: "docs", message: 'unknown key "enable" (did you mean "enabled"?)' }]);
  });

  test("false: no /docs, and the routes still answer with their schemas", async () => {
    const vault = await startTestVault({ storage: "memory", extraYaml: "docs: {enabled: false}\nbackends: []" });
    try {
      for (const path of ["/docs", "/docs/json"]) {
        const response = await rawRequest(vault.url, path);
        assert.equal(response.status, 404, path);
        assert.equal(response.json<{ error: { code: string } }>().error.code, "404");
      }
      const put = await rawRequest(vault.url, "/objects/a", { method: "PUT", headers: vault.auth("all"), body: "x" });
      assert.deepEqual(Object.keys(put.json<Json>()), ["key", "size", "created_at"]);
      assert.deepEqual(put.json(), { key: "a", size: 1, created_at: put.json<{ created_at: string }>().created_at });
      const list = await rawRequest(vault.url, "/objects", { headers: vault.auth("all") });
      assert.deepEqual(list.json(), { keys: ["a"], next_cursor: null, has_more: false });
    } finally {
      await vault.close();
    }
  });
});

/**
 * The drift check: a vault built in-process records what each handler returned before it was
 * serialized (fast-json-stringify silently drops a field its schema lacks, so the answer on the
 * wire alone could not show one). Both are checked against the description, with every object
 * of it closed (`additionalProperties: false`): a field the description lacks fails.
 */
describe("the description against real answers", () => {
  const logger = pino({ level: "silent" });
  let dir: string;
  let origin: OriginServer;
  let app: FastifyInstance;
  let url: string;
  let backends: Backend[] = [];
  let cache: ArtifactCache;
  let tokens: Record<string, string>;
  let doc: OpenApiDocument;
  let schemas: DescribedSchemas;
  /** What handlers returned, by request id, as JSON would carry it. */
  const returned = new Map<string, unknown>();
  /** `METHOD path` of the operations checked. */
  const checked = new Set<string>();
  let starting = "warming up";
  let releaseSlow!: () => void;

  const auth = (name: string) => ({ authorization: `Bearer ${tokens[name] ?? "missing"}` });

  /** Sends a request and checks its answer against what the description says of `method path`. */
  const call = async (method: string, describedPath: string, path: string, options: { token?: string; headers?: Record<string, string>; body?: string } = {}) => {
    const response = await rawRequest(url, path, {
      method,
      headers: { ...(options.token === undefined ? {} : auth(options.token)), ...options.headers },
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    checkAnswer(doc, schemas, method.toLowerCase(), describedPath, response, returned);
    checked.add(`${method.toLowerCase()} ${describedPath}`);
    return response;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "api-docs-"));
    origin = await new OriginServer().start();
    origin.files.set("/dist/a.bin", { body: randomBytes(2048) });
    origin.files.set("/dist/meta/index.json", { body: Buffer.from('{"versions": []}'), contentType: "application/json", etag: '"v1"' });
    const held = new Promise<void>((resolve) => (releaseSlow = resolve));
    origin.files.set("/dist/slow.bin", { body: randomBytes(64 * 1024), chunkSize: 1024, pauseAfter: { bytes: 4096, until: held } });

    const tokensFile = join(dir, "tokens.json");
    const records = await tokenRecords([
      { name: "all", scopes: ["read", "write", "delete", "admin"] },
      { name: "reader", scopes: ["read"] },
    ]);
    tokens = records.tokens;
    await writeTokensFile(tokensFile, records.records);
    const authenticator = new TokenAuthenticator(tokensFile, logger);
    await authenticator.start();
    const coordinator = new LocalCoordinator();
    const metrics = new VaultMetrics({ processMetrics: false });
    cache = new ArtifactCache({ driver: new MemoryDriver(), logger, spoolDirectory: join(dir, "spool"), negativeTtlMs: 0, coordinator, observer: metrics });
    await cache.start();
    const config = parseConfig({ backends: BACKENDS_YAML(origin.url) });
    assert.ok(config.ok);
    backends = await createBackends(config.value.backends, { logger, metadataTtlMs: 60_000, artifacts: cache });
    metrics.watch(cache, backends.map((backend) => backend.name));
    app = await buildServer({
      logger,
      readiness: new Readiness().add("test_part", () => starting),
      timeouts: { requestMs: 60_000, bodyMs: 60_000 },
      authenticator,
      objects: new ObjectService(new MemoryDriver(), 1024 * 1024),
      coordinator,
      rateLimit: { enabled: true, perTokenPerMinute: 10_000, perIpPerMinute: 10_000 },
      metrics: { observer: metrics, exposition: localExposition(metrics.registry), scope: undefined },
      vault: { backends, cache, requireToken: false },
    });
    app.addHook("preSerialization", async (request, _reply, payload) => {
      returned.set(request.id, JSON.parse(JSON.stringify(payload)) as unknown);
      return payload;
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    assert.ok(address !== null && typeof address === "object");
    url = `http://127.0.0.1:${address.port}`;
    doc = (await rawRequest(url, "/docs/json")).json<OpenApiDocument>();
    schemas = new DescribedSchemas(doc);
  });
  after(async () => {
    releaseSlow?.();
    await app?.close();
    await cache?.close();
    await Promise.all(backends.map((backend) => backend.close()));
    await origin?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("operations: /health, /ready (503, then 200), /metrics", async () => {
    await call("GET", "/health", "/health");
    await call("HEAD", "/health", "/health");
    assert.equal((await call("GET", "/ready", "/ready")).status, 503);
    starting = READY;
    assert.equal((await call("GET", "/ready", "/ready")).status, 200);
    await call("HEAD", "/ready", "/ready");
    assert.equal((await call("GET", "/metrics", "/metrics")).status, 200);
  });

  test("the object API: put, get, head, list, delete, and its errors", async () => {
    const key = "/objects/docs%2Fa%20b.txt";
    const put = await call("PUT", "/objects/{key}", key, { token: "all", headers: { "content-type": "text/plain" }, body: "hello, docs" });
    assert.equal(put.status, 200);
    assert.equal((await call("PUT", "/objects/{key}", key, { token: "all", headers: { "if-none-match": "*" }, body: "again" })).status, 412);
    assert.equal((await call("PUT", "/objects/{key}", key, { token: "all", headers: { "x-checksum-sha256": "nope" }, body: "x" })).status, 400);
    assert.equal((await call("PUT", "/objects/{key}", key, { token: "reader", body: "x" })).status, 403);
    await call("PUT", "/objects/{key}", "/objects/docs%2Fb", { token: "all", body: "b" });

    const got = await call("GET", "/objects/{key}", key, { token: "reader" });
    assert.equal(got.status, 200);
    assert.equal(got.body.toString("utf8"), "hello, docs");
    const etag = got.header("etag") ?? "";
    assert.equal((await call("GET", "/objects/{key}", key, { token: "reader", headers: { range: "bytes=0-4" } })).status, 206);
    assert.equal((await call("GET", "/objects/{key}", key, { token: "reader", headers: { "if-none-match": etag } })).status, 304);
    assert.equal((await call("GET", "/objects/{key}", key, { token: "reader", headers: { range: "bytes=500-" } })).status, 416);
    assert.equal((await call("GET", "/objects/{key}", "/objects/docs%2Fmissing", { token: "reader" })).status, 404);
    assert.equal((await call("GET", "/objects/{key}", "/objects/", { token: "reader" })).status, 400);
    assert.equal((await call("HEAD", "/objects/{key}", key, { token: "reader" })).status, 200);
    assert.equal((await call("HEAD", "/objects/{key}", "/objects/docs%2Fmissing", { token: "reader" })).status, 404);

    const list = await call("GET", "/objects", "/objects?prefix=docs%2F&limit=1", { token: "reader" });
    assert.deepEqual(list.json<{ keys: string[]; has_more: boolean }>().keys, ["docs/a b.txt"]);
    const next = list.json<{ next_cursor: string }>().next_cursor;
    assert.deepEqual((await call("GET", "/objects", `/objects?prefix=docs%2F&cursor=${encodeURIComponent(next)}`, { token: "reader" })).json(), {
      keys: ["docs/b"],
      next_cursor: null,
      has_more: false,
    });
    assert.equal((await call("GET", "/objects", "/objects?limit=abc", { token: "reader" })).status, 400);
    // Given twice: refused as the route's own parsing says it.
    const twice = await call("GET", "/objects", "/objects?limit=1&limit=2", { token: "reader" });
    assert.equal(twice.status, 400);
    assert.deepEqual(twice.json(), { error: { code: "400", message: "query parameter 'limit' given more than once" } });
    assert.equal((await call("GET", "/objects", "/objects")).status, 401);
    assert.equal((await call("GET", "/objects", "/objects", { token: "nobody" })).status, 401);

    assert.equal((await call("DELETE", "/objects/{key}", key, { token: "reader" })).status, 403);
    assert.equal((await call("DELETE", "/objects/{key}", key, { token: "all" })).status, 204);
    assert.equal((await call("DELETE", "/objects/{key}", key, { token: "all" })).status, 404);

    // An unknown route and a wrong method: the envelope, on no described operation.
    for (const [method, path, status] of [["GET", "/nowhere", 404], ["POST", "/objects", 405]] as const) {
      const response = await rawRequest(url, path, { method, headers: auth("all") });
      assert.equal(response.status, status);
      assert.ok(schemas.validator("Error", true)(response.json()), `${method} ${path}: the envelope`);
    }
  });

  test("cache administration after some cache traffic", async () => {
    assert.equal((await rawRequest(url, "/files/a.bin")).status, 200);
    assert.equal((await rawRequest(url, "/files/meta/index.json")).status, 200);
    await waitFor("those downloads to be stored", () => (cache.fillsInProgress().length === 0 ? true : undefined));
    // A download held in progress, for the fills.
    const slow = rawRequest(url, "/files/slow.bin");
    await waitFor("the slow download to be in progress", () => (cache.fillsInProgress().length > 0 ? true : undefined));

    const fills = await call("GET", "/admin/cache/fills", "/admin/cache/fills", { token: "all" });
    assert.deepEqual(
      fills.json<{ fills: Array<{ key: string }> }>().fills.map((fill) => fill.key),
      ["files/slow.bin"],
    );
    const stats = await call("GET", "/admin/cache/stats", "/admin/cache/stats", { token: "all" });
    assert.equal(stats.json<{ misses: number }>().misses >= 2, true);

    releaseSlow();
    assert.equal((await slow).status, 200);
    await waitFor("the slow download to be stored", () => (cache.fillsInProgress().length === 0 ? true : undefined));

    const entries = await call("GET", "/admin/cache/entries", "/admin/cache/entries", { token: "all" });
    const listed = entries.json<{ entries: Array<{ key: string; freshness: string; upstream_etag?: string }> }>().entries;
    assert.deepEqual(listed.map((entry) => entry.key).sort(), ["files/a.bin", "files/meta/index.json", "files/slow.bin"]);
    assert.equal(listed.find((entry) => entry.key === "files/meta/index.json")?.upstream_etag, '"v1"');
    const page = await call("GET", "/admin/cache/entries", "/admin/cache/entries?backend=files&limit=1", { token: "all" });
    assert.equal(page.json<{ has_more: boolean }>().has_more, true);
    assert.equal((await call("GET", "/admin/cache/entries", "/admin/cache/entries?limit=0", { token: "all" })).status, 400);
    assert.equal((await call("GET", "/admin/cache/entries", "/admin/cache/entries", { token: "reader" })).status, 403);

    assert.deepEqual((await call("DELETE", "/admin/cache/entries", "/admin/cache/entries?key=files%2Fa.bin", { token: "all" })).json(), { purged: 1 });
    assert.equal((await call("DELETE", "/admin/cache/entries", "/admin/cache/entries", { token: "all" })).status, 400);
    assert.equal((await call("DELETE", "/admin/cache/entries", "/admin/cache/entries?all=true")).status, 401);

    const backends = await call("GET", "/admin/backends", "/admin/backends", { token: "reader" });
    assert.deepEqual(backends.json<{ backends: Array<{ name: string }> }>().backends.map((backend) => backend.name), ["files"]);
  });

  test("every described operation was checked", () => {
    for (const [method, path] of DOCUMENTED) assert.ok(checked.has(`${method} ${path}`), `${method.toUpperCase()} ${path} was checked`);
  });
});

/**
 * The description's schemas compiled with Ajv (JSON Schema 2020-12, OpenAPI 3.1's dialect), its
 * `#/components/schemas/...` references resolved; each either as written or closed (every object
 * with `properties` refusing others).
 */
class DescribedSchemas {
  readonly #ajv = new Map<boolean, Ajv2020>();
  readonly #compiled = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    for (const closed of [false, true]) {
      const ajv = new Ajv2020({ strict: false, allErrors: true });
      // Ajv has no formats of its own: the one the description uses, as the vault writes it.
      ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/);
      ajv.addFormat("binary", true);
      for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(prepare({ ...schema, $id: componentId(name) }, closed) as Json);
      this.#ajv.set(closed, ajv);
    }
  }

  /** A validator of one component. */
  validator(component: string, closed: boolean): ValidateFunction {
    return this.compile({ $ref: `#/components/schemas/${component}` }, closed);
  }

  compile(schema: Json, closed: boolean): ValidateFunction {
    const key = `${String(closed)} ${JSON.stringify(schema)}`;
    let validate = this.#compiled.get(key);
    if (validate === undefined) {
      validate = this.#ajv.get(closed)!.compile(prepare(schema, closed) as Json);
      this.#compiled.set(key, validate);
    }
    return validate;
  }
}

function componentId(name: string): string {
  return `urn:artifact-vault:component:${name}`;
}

/** A copy with references to components turned into their ids and, when `closed`, every object closed. */
function prepare(schema: unknown, closed: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((item) => prepare(item, closed));
  if (typeof schema !== "object" || schema === null) return schema;
  const copy: Json = {};
  for (const [key, value] of Object.entries(schema as Json)) {
    if (key === "$ref" && typeof value === "string" && value.startsWith("#/components/schemas/")) copy[key] = componentId(value.slice("#/components/schemas/".length));
    else if (key === "properties" && typeof value === "object" && value !== null) {
      copy[key] = Object.fromEntries(Object.entries(value as Json).map(([name, property]) => [name, prepare(property, closed)]));
    } else copy[key] = prepare(value, closed);
  }
  if (closed && "properties" in copy && !("additionalProperties" in copy)) copy["additionalProperties"] = false;
  return copy;
}

/**
 * Checks an answer against the description of `method path`: its status is described (exactly or
 * as `4XX`/`5XX`); a body only where content is described, of a described media type; a JSON body
 * valid against the schema on the wire, and — what the handler returned, before serialization —
 * against the closed schema.
 */
function checkAnswer(doc: OpenApiDocument, schemas: DescribedSchemas, method: string, path: string, response: RawResponse, returned: ReadonlyMap<string, unknown>): void {
  const what = `${method.toUpperCase()} ${path} → ${response.status}`;
  const operation = doc.paths[path]?.[method];
  assert.ok(operation !== undefined, `${method.toUpperCase()} ${path} is described`);
  const status = String(response.status);
  const described = operation.responses[status] ?? operation.responses[`${status[0] ?? ""}XX`];
  assert.ok(described !== undefined, `${what} is described`);
  const requestId = response.header("x-request-id") ?? "";
  const before = returned.get(requestId);
  if (described.content === undefined) {
    assert.equal(response.body.length, 0, `${what}: no body`);
    assert.equal(before, undefined, `${what}: the handler returned no JSON`);
    return;
  }
  const mediaType = (response.header("content-type") ?? "").split(";")[0]?.trim() ?? "";
  const media = described.content[mediaType] ?? described.content["*/*"];
  assert.ok(media !== undefined, `${what}: ${mediaType} is a described media type (${Object.keys(described.content).join(", ")})`);
  if (mediaType !== "application/json") return;
  assert.ok(before !== undefined, `${what}: the handler's answer was recorded`);
  const closed = schemas.compile(media.schema, true);
  assert.ok(closed(before), `${what}: what the handler returned is described: ${JSON.stringify(closed.errors)}\n${JSON.stringify(before)}`);
  if (method === "head") return;
  const wire = schemas.compile(media.schema, false);
  const body = response.json();
  assert.ok(wire(body), `${what}: the answer is described: ${JSON.stringify(wire.errors)}`);
  assert.deepEqual(body, before, `${what}: serialization kept every field`);
}
