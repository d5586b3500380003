import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isVaultError } from "../core/errors.js";
import { joinUpstreamUrl, MAX_UPSTREAM_PATH_LENGTH, normaliseUpstreamPath } from "./upstream-path.js";

describe("normaliseUpstreamPath", () => {
  const accepted: ReadonlyArray<readonly [raw: string, expected: string]> = [
    ["", ""],
    ["a", "a"],
    ["a/b/c.tgz", "a/b/c.tgz"],
    ["simple/requests/", "simple/requests/"], // trailing slash: index pages
    ["v2/library/ubuntu/blobs/sha256:abc123", "v2/library/ubuntu/blobs/sha256:abc123"], // ':' after the first segment
    ["packages/user@host/x", "packages/user@host/x"], // '@' after the first segment
    ["a/b%20c.tar.gz", "a/b%20c.tar.gz"], // encodings kept as sent
    ["a/%41%62c", "a/%41%62c"], // not decoded and re-encoded
    ["a/foo%2etgz", "a/foo%2etgz"], // an encoded dot inside a name is a name
    ["a/.hidden", "a/.hidden"],
    ["a/..b", "a/..b"],
    ["a/b..", "a/b.."],
    [".well-known/x", ".well-known/x"],
    ["a/b c", "a/b%20c"], // raw characters not allowed in a path are encoded
    ["a/é", "a/%C3%A9"],
    ["a/{x}|[y]^`", "a/%7Bx%7D%7C%5By%5D%5E%60"],
    ["a/x;v=1", "a/x;v=1"],
    ["a/~user/!$&'()*+,=", "a/~user/!$&'()*+,="],
    // Double-encoded forms decode once to literal text: a file named "%2e%2e", not a dot segment.
    ["%252e%252e/x", "%252e%252e/x"],
    ["a/%252f", "a/%252f"],
    ["a/%2500", "a/%2500"],
  ];
  for (const [raw, expected] of accepted) {
    test(`accepts ${JSON.stringify(raw)}`, () => {
      assert.equal(normaliseUpstreamPath(raw), expected);
    });
  }

  const refused: ReadonlyArray<readonly [raw: string, why: string]> = [
    ["..", "dot-dot"],
    ["../etc/passwd", "dot-dot first"],
    ["a/../../etc/passwd", "dot-dot inside"],
    ["a/..", "dot-dot last"],
    [".", "dot"],
    ["a/./b", "dot inside"],
    ["%2e%2e/x", "encoded dot-dot"],
    ["a/%2E%2E/b", "encoded dot-dot, upper case"],
    ["a/%2E./b", "half-encoded dot-dot"],
    ["a/.%2e/b", "half-encoded dot-dot"],
    ["a/%2e/b", "encoded dot"],
    ["a/..;/b", "dot-dot with a path parameter (Tomcat)"],
    ["a/..%20/b", "dot-dot with trailing space"],
    ["a/.../b", "only dots"],
    ["a/%EF%BC%8E%EF%BC%8E/b", "full-width dot-dot"],
    ["a/%c0%ae%c0%ae/b", "overlong UTF-8 dots"],
    ["a%2f..%2fb", "encoded slash"],
    ["a/b%2Fc", "encoded slash, upper case"],
    ["a/%5c..%5cb", "encoded backslash"],
    ["a/%EF%BC%8Fb", "full-width slash"],
    ["a\\b", "backslash"],
    ["..\\x", "backslash dot-dot"],
    ["/etc/passwd", "leading slash"],
    ["//evil.example/x", "protocol-relative"],
    ["a//b", "empty segment"],
    ["a//", "empty segment before the trailing slash"],
    ["http://evil.example/", "absolute URL"],
    ["https:/evil.example/", "scheme in the first segment"],
    ["a/http://evil.example/", "'://' anywhere"],
    ["evil.example:80/x", "':' in the first segment"],
    ["@evil.example/x", "'@' in the first segment"],
    ["user@evil.example/x", "userinfo-like first segment"],
    ["user%40evil.example/x", "encoded '@' in the first segment"],
    ["evil%3A80/x", "encoded ':' in the first segment"],
    ["a/b\u0000c", "NUL"],
    ["a/b%00c", "encoded NUL"],
    ["a/b\r\nHost: evil", "CR LF"],
    ["a/b%0d%0ac", "encoded CR LF"],
    ["a/b\u007fc", "DEL"],
    ["a/b%7fc", "encoded DEL"],
    ["a/b%zzc", "invalid percent-encoding"],
    ["a/b%", "lone percent"],
    ["a/b%4", "truncated percent-encoding"],
    ["a/%ff", "encoded bytes that are not UTF-8"],
    ["a/b?x=1", "query"],
    ["a/b#frag", "fragment"],
    ["a/\ud800", "lone surrogate"],
    ["a".repeat(MAX_UPSTREAM_PATH_LENGTH + 1), "too long"],
  ];
  for (const [raw, why] of refused) {
    test(`refuses ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}...` : raw)} (${why})`, () => {
      assert.throws(
        () => normaliseUpstreamPath(raw),
        (error: unknown) => isVaultError(error, "bad_request"),
      );
    });
  }
});

describe("normaliseUpstreamPath with npm scopes", () => {
  const npm = { npmScopes: true } as const;
  test("accepts a scope, and a scoped name with its slash encoded, as the first segment only", () => {
    for (const path of ["@types%2fnode", "@types%2Fnode", "@types/node", "@types/node/-/node-20.1.0.tgz", "@vault-probe/lib/1.0.0", "lodash/-/lodash-4.17.21.tgz"]) {
      assert.equal(normaliseUpstreamPath(path, npm), path);
    }
    // Without the rule, the same paths stay refused.
    for (const path of ["@types%2fnode", "@types/node"]) {
      assert.throws(() => normaliseUpstreamPath(path), (error: unknown) => isVaultError(error, "bad_request"));
    }
  });

  const refused: readonly string[] = [
    "@scope%2f..", // the encoded slash joins two plain names, never a dot segment
    "@scope%2f.hidden",
    "@..%2fx",
    "@.%2fx",
    "@scope%2fname%2fmore",
    "@scope%2fname%2f..%2f..%2fetc",
    "@scope%5cname",
    "@scope%2fname/%2f",
    "@scope/name/%2e%2e/x",
    "@scope/../x",
    "x/@scope%2fname", // only the first segment
    "@scope%2f%2fname",
    "@sc ope%2fname",
  ];
  for (const path of refused) {
    test(`refuses ${JSON.stringify(path)}`, () => {
      assert.throws(() => normaliseUpstreamPath(path, npm), (error: unknown) => isVaultError(error, "bad_request"));
    });
  }

  test("a scoped path joined to a base URL stays on its host and below its path", () => {
    const url = joinUpstreamUrl("https://registry.example/npm/", normaliseUpstreamPath("@evil.example%2fx", npm));
    assert.equal(url.origin, "https://registry.example");
    assert.equal(url.pathname, "/npm/@evil.example%2fx");
  });
});

describe("joinUpstreamUrl", () => {
  test("appends to the base URL's path", () => {
    assert.equal(joinUpstreamUrl("https://h.example/dist", "a/b.tgz").href, "https://h.example/dist/a/b.tgz");
    assert.equal(joinUpstreamUrl("https://h.example/dist/", "a/b.tgz").href, "https://h.example/dist/a/b.tgz");
    assert.equal(joinUpstreamUrl("https://h.example", "a/b.tgz").href, "https://h.example/a/b.tgz");
    assert.equal(joinUpstreamUrl("http://127.0.0.1:8081/x/y", "z/").href, "http://127.0.0.1:8081/x/y/z/");
    assert.equal(joinUpstreamUrl("https://h.example/dist", "").href, "https://h.example/dist/");
  });

  test("keeps percent-encodings as given", () => {
    assert.equal(joinUpstreamUrl("https://h.example/p", "a%20b/%252e").pathname, "/p/a%20b/%252e");
  });

  test("never carries the base URL's userinfo, query or fragment", () => {
    const url = joinUpstreamUrl("https://u:p@h.example/p?q=1#f", "a");
    assert.equal(url.href, "https://h.example/p/a");
  });

  test("prefixes of a normalised path cannot become an authority", () => {
    // What a naive `base + path` would turn into another host stays a path here.
    assert.equal(joinUpstreamUrl("https://h.example", "@evil.example/x").host, "h.example");
    assert.equal(joinUpstreamUrl("https://h.example/p", "/evil.example/x").host, "h.example");
  });

  test("asserts the result stays below the base path (a path that skipped normalisation)", () => {
    for (const path of ["../x", "%2e%2e/x", "a/../../x", "..\\x"]) {
      assert.throws(
        () => joinUpstreamUrl("https://h.example/dist", path),
        (error: unknown) => isVaultError(error, "internal"),
        path,
      );
    }
  });

  test("refuses a base URL that is not http or https", () => {
    for (const base of ["file:///etc", "ftp://h.example/", "not a url"]) {
      assert.throws(
        () => joinUpstreamUrl(base, "a"),
        (error: unknown) => isVaultError(error, "internal"),
        base,
      );
    }
  });
});

describe("normaliseUpstreamPath with slash-joined names (a hub revision such as refs%2Fpr%2F1)", () => {
  const hub = { slashJoinedNames: true } as const;
  test("accepts plain names joined by an encoded slash after the first segment only", () => {
    for (const path of ["org/name/resolve/refs%2Fpr%2F1/config.json", "api/datasets/org/data/tree/refs%2Fconvert%2Fparquet/default", "gpt2/resolve/main/model.bin"]) {
      assert.equal(normaliseUpstreamPath(path, hub), path);
    }
    assert.throws(() => normaliseUpstreamPath("org/name/resolve/refs%2Fpr%2F1/x"), (error: unknown) => isVaultError(error, "bad_request"), "without the rule, refused");
  });
  for (const path of [
    "refs%2Fpr%2F1/x", // not the first segment
    "org/resolve/refs%2F..%2Fx/y",
    "org/resolve/refs%2F.hidden/y",
    "org/resolve/%2Frefs/y",
    "org/resolve/refs%2F/y",
    "org/resolve/refs%2F%2Fpr/y",
    "org/resolve/refs%5Cpr/y",
    "org/resolve/refs%2Fp%20r/y",
    "org/resolve/refs%2F%2e%2e/y",
  ]) {
    test(`refuses ${JSON.stringify(path)}`, () => {
      assert.throws(() => normaliseUpstreamPath(path, hub), (error: unknown) => isVaultError(error, "bad_request"));
    });
  }
});
