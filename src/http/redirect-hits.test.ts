import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import type { FastifyRequest } from "fastify";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { CachedArtifact } from "../core/cache/artifact-source.js";
import type { Backend } from "../upstreams/backend.js";
import { redirectHitsSettings, redirectLocation, type RedirectHits } from "./redirect-hits.js";

const SETTINGS: RedirectHits = { minSize: 1000, expirySeconds: 300 };
const REF: ArtifactRef = { backend: "pypi", cacheKey: "pypi/packages/x.whl", upstreamPath: "x.whl", freshness: { kind: "immutable" } };
const FOLLOWS = { clientsFollowRedirects: () => true } as unknown as Backend;

function request(overrides: { method?: string; headers?: Record<string, string>; originalUrl?: string } = {}): { request: FastifyRequest; warnings: unknown[] } {
  const warnings: unknown[] = [];
  const fake = {
    method: overrides.method ?? "GET",
    headers: overrides.headers ?? {},
    originalUrl: overrides.originalUrl ?? "/pypi/packages/x.whl",
    log: { warn: (...args: unknown[]) => warnings.push(args) },
  };
  return { request: fake as unknown as FastifyRequest, warnings };
}

function artifact(overrides: Partial<CachedArtifact> = {}): CachedArtifact {
  return {
    status: "HIT",
    size: 5000,
    contentType: undefined,
    etag: '"abc"',
    lastModified: undefined,
    upstreamHeaders: {},
    contents: undefined,
    body: () => Readable.from([]),
    release: () => undefined,
    presign: async (seconds) => `https://bucket.example/x?X-Amz-Expires=${seconds}`,
    ...overrides,
  };
}

void describe("redirectLocation", () => {
  void it("signs a URL for a large stored hit of a backend whose clients follow redirects", async () => {
    assert.equal(await redirectLocation(request().request, FOLLOWS, REF, artifact(), SETTINGS), "https://bucket.example/x?X-Amz-Expires=300");
    assert.ok(await redirectLocation(request({ headers: { range: "bytes=0-9" } }).request, FOLLOWS, REF, artifact({ size: 1000 }), SETTINGS));
  });

  void it("serves everything else from the vault", async () => {
    const cases: Array<[string, Parameters<typeof redirectLocation>]> = [
      ["off", [request().request, FOLLOWS, REF, artifact(), undefined]],
      ["HEAD", [request({ method: "HEAD" }).request, FOLLOWS, REF, artifact(), SETTINGS]],
      ["no presign (a fill, a mutable entry, a store without URLs)", [request().request, FOLLOWS, REF, artifact({ presign: undefined }), SETTINGS]],
      ["STALE", [request().request, FOLLOWS, REF, artifact({ status: "STALE" }), SETTINGS]],
      ["MISS", [request().request, FOLLOWS, REF, artifact({ status: "MISS" }), SETTINGS]],
      ["small", [request().request, FOLLOWS, REF, artifact({ size: 999 }), SETTINGS]],
      ["size unknown", [request().request, FOLLOWS, REF, artifact({ size: undefined }), SETTINGS]],
      ["apt's proxy mode", [request({ originalUrl: "http://deb.debian.org/debian/pool/x.deb" }).request, FOLLOWS, REF, artifact(), SETTINGS]],
      ["a backend without the capability", [request().request, {} as Backend, REF, artifact(), SETTINGS]],
      ["a backend that says no for this ref", [request().request, { clientsFollowRedirects: () => false } as unknown as Backend, REF, artifact(), SETTINGS]],
    ];
    for (const name of ["if-none-match", "if-modified-since", "if-range", "if-match", "if-unmodified-since"]) {
      cases.push([name, [request({ headers: { [name]: '"abc"' } }).request, FOLLOWS, REF, artifact(), SETTINGS]]);
    }
    for (const [name, args] of cases) assert.equal(await redirectLocation(...args), undefined, name);
  });

  void it("a URL that cannot be signed is logged, and the hit served by the vault", async () => {
    const { request: failing, warnings } = request();
    const refused = artifact({ presign: () => Promise.reject(new Error("no credentials")) });
    assert.equal(await redirectLocation(failing, FOLLOWS, REF, refused, SETTINGS), undefined);
    assert.equal(warnings.length, 1);
  });
});

void describe("redirectHitsSettings", () => {
  const config = { redirect_hits: true, redirect_min_size: 1024, redirect_expiry_ms: 90_000 };

  void it("is the routes' settings when on and the store can sign", () => {
    const warnings: string[] = [];
    assert.deepEqual(redirectHitsSettings(config, { kind: "s3", presign: () => undefined }, (message) => warnings.push(message)), { minSize: 1024, expirySeconds: 90 });
    assert.equal(warnings.length, 0);
  });

  void it("is undefined when off, and with a warning when the store cannot sign", () => {
    const warnings: string[] = [];
    assert.equal(redirectHitsSettings({ ...config, redirect_hits: false }, { kind: "filesystem" }, (message) => warnings.push(message)), undefined);
    assert.equal(warnings.length, 0);
    assert.equal(redirectHitsSettings(config, { kind: "memory" }, (message) => warnings.push(message)), undefined);
    assert.match(warnings[0] ?? "", /cache\.redirect_hits has no effect: the memory store cannot sign URLs/);
  });
});
