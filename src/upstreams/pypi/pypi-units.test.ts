import { test } from "node:test";
import assert from "node:assert/strict";
import { formatFileLink, parseFileLink } from "./file-links.js";
import { isValidProjectName, normaliseProjectName } from "./project-name.js";
import { negotiateSimpleFormat } from "./simple-format.js";
import { rewriteProjectHtml, rewriteProjectJson, rewriteProjectListHtml, type SimpleUpstream } from "./simple-page-rewrite.js";

const FILE_SHA = "a".repeat(64);
const META_SHA = "b".repeat(64);
const PYPI: SimpleUpstream = { indexBase: new URL("https://pypi.org/simple/"), packagesBase: new URL("https://files.pythonhosted.org/packages/") };
const PAGE = "https://pypi.org/simple/demo/";

/** Every URL in a rewritten page, resolved as a client would from the vault's page URL. */
function resolvedFromVault(href: string): URL {
  return new URL(href, "http://vault.test/pypi/simple/demo/");
}

test("project names: PEP 503 normalisation and PEP 508 validity", () => {
  assert.equal(normaliseProjectName("Vault_Probe.Gamma"), "vault-probe-gamma");
  assert.equal(normaliseProjectName("VAULT--probe__.gamma"), "vault-probe-gamma");
  assert.equal(isValidProjectName("Vault_Probe.Gamma"), true);
  for (const bad of ["", "-x", "x-", "a b", "../x", "x/y", "é"]) assert.equal(isValidProjectName(bad), false, bad);
});

test("content negotiation follows Accept as PyPI does", () => {
  assert.equal(negotiateSimpleFormat(undefined), "html");
  assert.equal(negotiateSimpleFormat("*/*"), "html");
  assert.equal(negotiateSimpleFormat("text/html"), "html");
  // pip ≥ 22.2
  assert.equal(negotiateSimpleFormat("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"), "json");
  assert.equal(negotiateSimpleFormat("application/vnd.pypi.simple.latest+json"), "json");
  assert.equal(negotiateSimpleFormat("application/vnd.pypi.simple.v1+html"), "html");
  assert.equal(negotiateSimpleFormat("application/json"), undefined);
});

test("file links round-trip, with and without digests and sources", () => {
  const cases = [
    { source: "packages", path: "ab/cd/ef/demo-1.0-py3-none-any.whl", fileDigest: { algorithm: "sha256", hex: FILE_SHA }, metadataDigest: { algorithm: "sha256", hex: META_SHA } },
    { source: "index", path: "root/+f/demo-1.0.tar.gz", fileDigest: { algorithm: "sha512", hex: "c".repeat(128) }, metadataDigest: undefined },
    { source: "packages", path: "demo-1.0.zip", fileDigest: undefined, metadataDigest: undefined },
  ] as const;
  for (const link of cases) assert.deepEqual(parseFileLink(formatFileLink(link)), link);
  assert.equal(formatFileLink(cases[0]), `sha256/${FILE_SHA}/metadata-sha256/${META_SHA}/ab/cd/ef/demo-1.0-py3-none-any.whl`);
  // A short or non-hex "digest" is just part of the path.
  assert.deepEqual(parseFileLink("sha256/abc/demo.whl"), { source: "packages", path: "sha256/abc/demo.whl", fileDigest: undefined, metadataDigest: undefined });
});

test("HTML project page: file links come back to the vault and nothing else changes", async () => {
  const upstreamPage = `<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.1">
    <title>Links for demo</title>
  </head>
  <body>
    <h1>Links for demo</h1>
    <a href="https://files.pythonhosted.org/packages/ab/cd/ef/demo-1.0-py3-none-any.whl#sha256=${FILE_SHA}" data-requires-python="&gt;=3.6, &lt;4" data-dist-info-metadata="sha256=${META_SHA}" data-core-metadata="sha256=${META_SHA}">demo-1.0-py3-none-any.whl</a><br />
    <a href="../../packages/12/34/demo-0.9.tar.gz#sha256=${FILE_SHA}" data-yanked="broken &amp; withdrawn">demo-0.9.tar.gz</a><br />
    <a href="https://elsewhere.example/demo-0.1.tar.gz">demo-0.1.tar.gz</a><br />
  </body>
</html>
<!--SERIAL 1-->`;
  const { text, dropped } = await rewriteProjectHtml(PYPI, upstreamPage, PAGE);
  assert.deepEqual(dropped, ["https://elsewhere.example/demo-0.1.tar.gz"]);
  const wheel = `../../packages/sha256/${FILE_SHA}/metadata-sha256/${META_SHA}/ab/cd/ef/demo-1.0-py3-none-any.whl#sha256=${FILE_SHA}`;
  // A relative link resolves against the upstream page: pypi.org/packages/... is on the index host.
  const sdist = `../../packages/sha256/${FILE_SHA}/~index/packages/12/34/demo-0.9.tar.gz#sha256=${FILE_SHA}`;
  const expected = upstreamPage
    .replace(`href="https://files.pythonhosted.org/packages/ab/cd/ef/demo-1.0-py3-none-any.whl#sha256=${FILE_SHA}"`, `href="${wheel}"`)
    .replace(`href="../../packages/12/34/demo-0.9.tar.gz#sha256=${FILE_SHA}"`, `href="${sdist}"`)
    .replace(`<a href="https://elsewhere.example/demo-0.1.tar.gz">demo-0.1.tar.gz</a>`, "");
  assert.equal(text, expected);
  for (const href of [wheel, sdist]) {
    const url = resolvedFromVault(href);
    assert.equal(url.origin, "http://vault.test");
    assert.ok(url.pathname.startsWith("/pypi/packages/"), url.pathname);
  }
});

test("HTML: a <base href> is honoured for resolving, then removed", async () => {
  const page = `<html><head><base href="https://files.pythonhosted.org/packages/"></head><body><a href="x/y/demo-1.0.tar.gz#sha256=${FILE_SHA}">demo-1.0.tar.gz</a></body></html>`;
  const { text } = await rewriteProjectHtml(PYPI, page, PAGE);
  assert.equal(text, `<html><head></head><body><a href="../../packages/sha256/${FILE_SHA}/x/y/demo-1.0.tar.gz#sha256=${FILE_SHA}">demo-1.0.tar.gz</a></body></html>`);
});

test("HTML: an escaping path or a non-http scheme is dropped, never passed through", async () => {
  const page = `<a href="https://files.pythonhosted.org/packages/%2e%2e/x.whl">a</a><a href="javascript:alert(1)">b</a><a href="file:///etc/passwd">c</a>`;
  const { text, dropped } = await rewriteProjectHtml(PYPI, page, PAGE);
  assert.equal(text, "");
  assert.equal(dropped.length, 3);
});

test("HTML project list: project links become <normalised>/ relative to the list", async () => {
  const page = `<html><body><a href="/simple/demo/">demo</a><a href="/simple/Vault_Probe.Gamma/">Vault_Probe.Gamma</a></body></html>`;
  const { text } = await rewriteProjectListHtml(page, "https://pypi.org/simple/");
  assert.equal(text, `<html><body><a href="demo/">demo</a><a href="vault-probe-gamma/">Vault_Probe.Gamma</a></body></html>`);
});

test("JSON project page: urls rewritten, hashes, yanked, requires-python and metadata kept", () => {
  const page = {
    meta: { "api-version": "1.1", "_last-serial": 7 },
    name: "demo",
    versions: ["0.1", "1.0"],
    files: [
      {
        filename: "demo-1.0-py3-none-any.whl",
        url: "https://files.pythonhosted.org/packages/ab/cd/ef/demo-1.0-py3-none-any.whl",
        hashes: { sha256: FILE_SHA },
        "requires-python": ">=3.6, <4",
        "core-metadata": { sha256: META_SHA },
        "dist-info-metadata": { sha256: META_SHA },
        yanked: "broken",
        size: 123,
      },
      { filename: "demo-0.1.tar.gz", url: "https://elsewhere.example/demo-0.1.tar.gz", hashes: {} },
    ],
  };
  const { text, dropped } = rewriteProjectJson(PYPI, JSON.stringify(page), PAGE);
  assert.deepEqual(dropped, ["https://elsewhere.example/demo-0.1.tar.gz"]);
  const rewritten = JSON.parse(text) as typeof page;
  assert.deepEqual(rewritten, {
    ...page,
    files: [{ ...page.files[0], url: `../../packages/sha256/${FILE_SHA}/metadata-sha256/${META_SHA}/ab/cd/ef/demo-1.0-py3-none-any.whl` }],
  });
  assert.throws(() => rewriteProjectJson(PYPI, "{not json", PAGE), /invalid JSON/);
});

test("HTML: a page larger than a parse slice is rewritten whole, and other work runs while it is parsed", async () => {
  // Anchors of varying length so that slice boundaries fall inside tags and attributes.
  const anchors = Array.from({ length: 4000 }, (_, i) => `<a href="/simple/p-${i}${"x".repeat(i % 37)}/">p-${i}</a>\n`);
  const page = `<html><body>\n${anchors.join("")}</body></html>`;
  assert.ok(page.length > 3 * 64 * 1024);
  let ticks = 0;
  let running = true;
  const tick = (): void => {
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const { text } = await rewriteProjectListHtml(page, "https://pypi.org/simple/");
  running = false;
  const expected = `<html><body>\n${Array.from({ length: 4000 }, (_, i) => `<a href="p-${i}${"x".repeat(i % 37)}/">p-${i}</a>\n`).join("")}</body></html>`;
  assert.equal(text, expected);
  assert.ok(ticks >= 3, `the event loop turned ${ticks} times during the rewrite`);
});
