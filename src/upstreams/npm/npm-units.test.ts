import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { isVaultError } from "../../core/errors.js";
import { normaliseUpstreamPath } from "../upstream-path.js";
import type { CachedArtifact } from "../../core/cache/artifact-source.js";
import { packumentPath, parseNpmPath, tarballPath, type PackageName } from "./npm-paths.js";
import { negotiatePackumentFormat } from "./packument-format.js";
import { MarkerSubstitution, presentPackument, substitute } from "./packument-present.js";
import { rewriteManifest, rewritePackument, tarballSourcesOf, UPSTREAM_TARBALLS_FIELD, VAULT_BASE, VAULT_BASE_IN_JSON } from "./packument-rewrite.js";
import { PackumentJobs } from "./packument-jobs.js";

const SCOPED: PackageName = { full: "@types/node", scope: "types", bare: "node" };
const PLAIN: PackageName = { full: "lodash", scope: undefined, bare: "lodash" };
const REGISTRY = "https://registry.example/";

describe("npm request paths", () => {
  const cases: ReadonlyArray<readonly [string, unknown]> = [
    ["lodash", { kind: "packument", name: PLAIN }],
    ["lodash/", { kind: "packument", name: PLAIN }],
    ["@types%2fnode", { kind: "packument", name: SCOPED }],
    ["@types%2Fnode", { kind: "packument", name: SCOPED }],
    ["@types/node", { kind: "packument", name: SCOPED }],
    ["%40types%2fnode", { kind: "packument", name: SCOPED }],
    ["JSONStream", { kind: "packument", name: { full: "JSONStream", scope: undefined, bare: "JSONStream" } }],
    ["lodash/4.17.21", { kind: "version", name: PLAIN, spec: "4.17.21" }],
    ["@types/node/latest", { kind: "version", name: SCOPED, spec: "latest" }],
    ["@types%2fnode/20.1.0-beta.1+build.5", { kind: "version", name: SCOPED, spec: "20.1.0-beta.1+build.5" }],
    ["lodash/-/lodash-4.17.21.tgz", { kind: "tarball", name: PLAIN, version: "4.17.21" }],
    ["@types/node/-/node-20.1.0.tgz", { kind: "tarball", name: SCOPED, version: "20.1.0" }],
    ["@types%2fnode/-/node-20.1.0-rc.1.tgz", { kind: "tarball", name: SCOPED, version: "20.1.0-rc.1" }],
    ["-/v1/search", { kind: "api", path: "-/v1/search" }],
  ];
  for (const [path, expected] of cases) {
    test(`${path}`, () => assert.deepEqual(parseNpmPath(path), expected));
  }

  const refused = [
    "..",
    "%2e%2e",
    ".hidden",
    "_private",
    "a%2fb",
    "@types%2f..",
    "@types/..",
    "@..%2fx",
    "@types%2fnode%2fextra",
    "lodash/..",
    "lodash/-/underscore-1.0.0.tgz",
    "lodash/-/lodash-.tgz",
    "lodash/-/lodash-1.0.0.tar.gz",
    "lodash/-/lodash-..tgz",
    "@types/node/-/@types/node-1.0.0.tgz",
    "a/b/c/d",
    "a b",
    `${"x".repeat(215)}`,
  ];
  for (const path of refused) {
    test(`refuses ${JSON.stringify(path.length > 30 ? `${path.slice(0, 30)}...` : path)}`, () => {
      assert.throws(() => parseNpmPath(path), (error: unknown) => isVaultError(error, "not_found") || isVaultError(error, "bad_request"));
    });
  }

  test("every registry path built from a parsed name is already a normalised upstream path", () => {
    for (const [path] of cases) {
      const target = parseNpmPath(path);
      if (target.kind === "api") continue;
      const built = target.kind === "tarball" ? tarballPath(target.name, target.version) : target.kind === "version" ? `${packumentPath(target.name)}/${target.spec}` : packumentPath(target.name);
      assert.equal(normaliseUpstreamPath(built, { npmScopes: true }), built, path);
    }
  });

  test("registry paths: the packument as npm asks for it, the tarball as the public registry serves it", () => {
    assert.equal(packumentPath(SCOPED), "@types%2fnode");
    assert.equal(packumentPath(PLAIN), "lodash");
    assert.equal(tarballPath(SCOPED, "20.1.0"), "@types/node/-/node-20.1.0.tgz");
    assert.equal(tarballPath(PLAIN, "4.17.21"), "lodash/-/lodash-4.17.21.tgz");
  });
});

describe("packument format by Accept", () => {
  const table: ReadonlyArray<readonly [string | undefined, string]> = [
    [undefined, "full"],
    ["*/*", "full"],
    ["application/json", "full"],
    ["application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", "abbreviated"],
    ["application/vnd.npm.install-v1+json", "abbreviated"],
    ["application/vnd.npm.install-v1+json; q=0.1, application/json", "full"],
    ["text/html", "full"],
  ];
  for (const [accept, format] of table) {
    test(`${accept ?? "(none)"} → ${format}`, () => assert.equal(negotiatePackumentFormat(accept), format));
  }
});

function packument(versions: Record<string, string | undefined>): Record<string, unknown> {
  return {
    _id: "@types/node",
    name: "@types/node",
    "dist-tags": { latest: Object.keys(versions).at(-1) },
    readme: 'a readme that mentions "tarball": "https://elsewhere.example/x.tgz"',
    versions: Object.fromEntries(
      Object.entries(versions).map(([version, tarball]) => [
        version,
        { name: "@types/node", version, scripts: { tarball: "not a dist field" }, dist: { integrity: `sha512-${version}`, shasum: "0".repeat(40), ...(tarball === undefined ? {} : { tarball }) } },
      ]),
    ),
  };
}

describe("packument rewrite", () => {
  test("every dist.tarball names the vault by the marker; nothing else changes", () => {
    const input = packument({ "1.0.0": `${REGISTRY}@types/node/-/node-1.0.0.tgz`, "2.0.0": "https://cdn.example/node/2.0.0.tgz" });
    const { text, tarballs, dropped } = rewritePackument(JSON.stringify(input), SCOPED, REGISTRY);
    assert.deepEqual(dropped, []);
    const output = JSON.parse(text) as Record<string, unknown>;
    const expected = structuredClone(input) as { versions: Record<string, { dist: { tarball?: string } }> } & Record<string, unknown>;
    for (const version of ["1.0.0", "2.0.0"]) {
      const manifest = expected.versions[version];
      if (manifest !== undefined) manifest.dist.tarball = `${VAULT_BASE}/@types/node/-/node-${version}.tgz`;
    }
    // The unusual upstream URL is kept for fetching; the usual one needs no record.
    expected[UPSTREAM_TARBALLS_FIELD] = { "2.0.0": "https://cdn.example/node/2.0.0.tgz" };
    assert.deepEqual(output, expected);
    assert.ok(text.includes(`"tarball":"${VAULT_BASE_IN_JSON}/@types/node/-/node-1.0.0.tgz"`));
    assert.deepEqual(tarballs["1.0.0"], { integrity: "sha512-1.0.0", shasum: "0".repeat(40), upstreamUrl: `${REGISTRY}@types/node/-/node-1.0.0.tgz` });
    // A cached rewrite gives the same sources back, after a restart.
    assert.deepEqual(tarballSourcesOf(text, SCOPED, REGISTRY), tarballs);
  });

  test("a version whose number cannot name a tarball is left out", () => {
    const { text, dropped } = rewritePackument(JSON.stringify(packument({ "1.0.0": undefined, "../../x": undefined })), SCOPED, REGISTRY);
    assert.deepEqual(dropped, ["../../x"]);
    assert.deepEqual(Object.keys((JSON.parse(text) as { versions: object }).versions), ["1.0.0"]);
  });

  test("a marker smuggled in by the upstream is not trusted as a record of ours", () => {
    const input = { ...packument({ "1.0.0": `${REGISTRY}@types/node/-/node-1.0.0.tgz` }), [UPSTREAM_TARBALLS_FIELD]: { "1.0.0": "https://evil.example/x.tgz" } };
    const { text } = rewritePackument(JSON.stringify(input), SCOPED, REGISTRY);
    assert.equal(tarballSourcesOf(text, SCOPED, REGISTRY)["1.0.0"]?.upstreamUrl, `${REGISTRY}@types/node/-/node-1.0.0.tgz`);
  });

  test("a single version's manifest", () => {
    const manifest = { name: "lodash", version: "4.17.21", dist: { tarball: `${REGISTRY}lodash/-/lodash-4.17.21.tgz`, integrity: "sha512-x" } };
    const { text, tarballs } = rewriteManifest(JSON.stringify(manifest), PLAIN);
    assert.equal((JSON.parse(text) as typeof manifest).dist.tarball, `${VAULT_BASE}/lodash/-/lodash-4.17.21.tgz`);
    assert.equal(tarballs["4.17.21"]?.integrity, "sha512-x");
  });

  test("not JSON, or not an object: the upstream's fault", () => {
    for (const bad of ["{nope", "[1,2]", "null"]) {
      assert.throws(() => rewritePackument(bad, PLAIN, REGISTRY), (error: unknown) => isVaultError(error, "upstream_failed"));
    }
  });
});

describe("packument presentation", () => {
  const base = "http://vault.example:8080/npm";
  const rewritten = Buffer.from(rewritePackument(JSON.stringify(packument({ "1.0.0": undefined, "1.0.1": undefined })), SCOPED, REGISTRY).text);

  test("the marker becomes the client's base URL, and the document stays JSON", () => {
    const out = substitute(rewritten, Buffer.from(base));
    const parsed = JSON.parse(out.toString()) as { versions: Record<string, { dist: { tarball: string } }> };
    assert.equal(parsed.versions["1.0.1"]?.dist.tarball, `${base}/@types/node/-/node-1.0.1.tgz`);
    assert.ok(!out.includes(VAULT_BASE_IN_JSON));
  });

  test("streamed, a marker split across chunks at any byte is replaced all the same", async () => {
    const expected = substitute(rewritten, Buffer.from(base));
    for (const size of [1, 2, 7, VAULT_BASE_IN_JSON.length - 1, VAULT_BASE_IN_JSON.length, 100, rewritten.length]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < rewritten.length; at += size) chunks.push(rewritten.subarray(at, at + size));
      const output: Buffer[] = [];
      for await (const chunk of Readable.from(chunks).pipe(new MarkerSubstitution(Buffer.from(base)))) output.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(output), expected, `chunks of ${size}`);
    }
  });

  const artifact = (contents: Buffer | undefined): CachedArtifact => ({
    status: "HIT",
    size: rewritten.length,
    contentType: "application/json",
    etag: '"abc"',
    lastModified: undefined,
    upstreamHeaders: {},
    contents,
    body: () => Readable.from([rewritten]),
    release: () => undefined,
  });

  test("in memory: exact size and an ETag per base URL; streamed: chunked", async () => {
    const one = presentPackument(artifact(rewritten), base);
    const other = presentPackument(artifact(rewritten), "https://mirror.example/npm");
    assert.equal(one.size, one.contents?.length);
    assert.match(one.etag ?? "", /^"abc\.[0-9a-f]{12}"$/);
    assert.notEqual(one.etag, other.etag);
    const streamed = presentPackument(artifact(undefined), base);
    assert.equal(streamed.size, undefined);
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.body()) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), one.contents);
  });
});

test("a packument of tens of MB is rewritten in a worker while the event loop keeps turning", async () => {
  const description = "x".repeat(4096);
  const versions: Record<string, unknown> = {};
  for (let i = 0; i < 5000; i++) versions[`1.0.${i}`] = { name: "lodash", version: `1.0.${i}`, description, dist: { tarball: `${REGISTRY}lodash/-/lodash-1.0.${i}.tgz`, integrity: `sha512-${i}` } };
  const json = Buffer.from(JSON.stringify({ name: "lodash", versions }));
  assert.ok(json.length > 20 * 1024 * 1024, `${json.length} bytes`);
  const jobs = new PackumentJobs();
  try {
    let ticks = 0;
    let running = true;
    const tick = (): void => {
      ticks++;
      if (running) setTimeout(tick, 1);
    };
    setTimeout(tick, 1);
    const started = Date.now();
    const result = await jobs.rewritePackument(json, PLAIN, REGISTRY);
    running = false;
    const elapsed = Date.now() - started;
    assert.equal(Object.keys(result.tarballs).length, 5000);
    assert.equal(result.text, rewritePackument(json.toString(), PLAIN, REGISTRY).text);
    // The main thread was free: timers kept firing for most of the time the rewrite took.
    assert.ok(ticks >= Math.min(20, elapsed / 10), `${ticks} timer turns in ${elapsed} ms`);
  } finally {
    await jobs.close();
  }
});
