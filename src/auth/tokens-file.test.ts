import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isVaultError } from "../core/errors.js";
import {
  formatPythonIsoDate,
  formatTokensFile,
  generateToken,
  hashToken,
  isExpired,
  parseIsoDate,
  parseTokensFile,
  readTokensFile,
  writeTokensFile,
  type TokenRecord,
} from "./tokens-file.js";

const HASH = "a".repeat(64);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "tokens-file-test-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function entry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "ci",
    hash: HASH,
    expires: "2026-12-21T10:00:00.123456+00:00",
    created_at: "2025-12-21T10:00:00.000001+00:00",
    scopes: ["read", "write"],
    ...overrides,
  };
}

function assertBadRequest(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseTokensFile(text),
    (error: unknown) => {
      assert.ok(isVaultError(error, "bad_request"), `expected a bad_request VaultError, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

void describe("hashToken / generateToken", () => {
  void it("hashes the UTF-8 bytes with SHA-256, hex", () => {
    assert.equal(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.equal(hashToken("é"), createHash("sha256").update(Buffer.from("é", "utf8")).digest("hex"));
  });

  void it("generates avt_-prefixed base64url tokens of 32 random bytes", () => {
    const token = generateToken();
    assert.match(token, /^avt_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token.slice(4), "base64url").length, 32);
    assert.notEqual(generateToken(), token);
  });
});

void describe("parseTokensFile", () => {
  void it("reads a file written by the source design's Python code", () => {
    const python = JSON.stringify([
      entry(),
      { name: "forever", hash: "B".repeat(64), expires: null, created_at: "2025-01-02T03:04:05+00:00", scopes: ["admin"] },
    ]);
    const [ci, forever] = parseTokensFile(python);
    assert.deepEqual(ci, {
      name: "ci",
      hash: HASH,
      expires: new Date("2026-12-21T10:00:00.123Z"),
      createdAt: new Date("2025-12-21T10:00:00.000Z"),
      scopes: ["read", "write"],
    });
    assert.equal(forever?.hash, "b".repeat(64), "hashes are normalised to lower case");
    assert.equal(forever?.expires, null);
  });

  void it("treats an absent expires as never", () => {
    const { expires: _, ...withoutExpires } = entry();
    assert.equal(parseTokensFile(JSON.stringify([withoutExpires]))[0]?.expires, null);
  });

  void it("accepts an empty list", () => {
    assert.deepEqual(parseTokensFile("[]"), []);
  });

  void it("ignores unknown fields and repeated scopes", () => {
    const [record] = parseTokensFile(JSON.stringify([entry({ note: "x", scopes: ["read", "read"] })]));
    assert.deepEqual(record?.scopes, ["read"]);
  });

  const malformed: Array<[string, string, RegExp]> = [
    ["not JSON", "[{", /not valid JSON/],
    ["not a list", JSON.stringify({ tokens: [] }), /expected a JSON list of tokens, got an object/],
    ["an entry that is not an object", JSON.stringify(["x"]), /\[0\]: expected an object, got "x"/],
    ["a missing name", JSON.stringify([entry({ name: undefined })]), /\[0\]: missing field "name"/],
    ["a missing hash", JSON.stringify([entry({ hash: undefined })]), /\[0\]: missing field "hash"/],
    ["a missing created_at", JSON.stringify([entry({ created_at: undefined })]), /missing field "created_at"/],
    ["missing scopes", JSON.stringify([entry({ scopes: undefined })]), /missing field "scopes"/],
    ["an empty name", JSON.stringify([entry({ name: "" })]), /\[0\]\.name: expected a non-empty string/],
    ["a short hash", JSON.stringify([entry({ hash: "abc" })]), /\[0\] \("ci"\)\.hash: expected 64 hex digits/],
    ["a non-hex hash", JSON.stringify([entry({ hash: "g".repeat(64) })]), /hash: expected 64 hex digits/],
    ["an unknown scope", JSON.stringify([entry({ scopes: ["read", "root"] })]), /scopes: unknown scope "root"/],
    ["scopes not a list", JSON.stringify([entry({ scopes: "read" })]), /scopes: expected a list of scopes/],
    ["a bad created_at", JSON.stringify([entry({ created_at: "yesterday" })]), /created_at: expected an ISO 8601 date, got "yesterday"/],
    ["an impossible date", JSON.stringify([entry({ expires: "2026-02-30T00:00:00" })]), /expires: expected an ISO 8601 date or null/],
    ["a numeric expires", JSON.stringify([entry({ expires: 1700000000 })]), /expires: expected an ISO 8601 date or null, got 1700000000/],
    ["a duplicate name", JSON.stringify([entry(), entry({ hash: "c".repeat(64) })]), /\[1\] \("ci"\)\.name: duplicate name \(also \[0\]\)/],
  ];
  for (const [what, text, pattern] of malformed) {
    void it(`refuses ${what} with a precise message`, () => assertBadRequest(text, pattern));
  }

  void it("names the source in messages", () => {
    assert.throws(() => parseTokensFile("{}", "/etc/vault/tokens.json"), /^VaultError: \/etc\/vault\/tokens\.json: expected a JSON list/);
  });
});

void describe("parseIsoDate", () => {
  const cases: Array<[string, string]> = [
    ["2026-12-21T10:00:00.123456+00:00", "2026-12-21T10:00:00.123Z"],
    ["2026-12-21T10:00:00+00:00", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21T10:00:00Z", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21T10:00:00.5Z", "2026-12-21T10:00:00.500Z"],
    ["2026-12-21T10:00:00.123456789Z", "2026-12-21T10:00:00.123Z"],
    ["2026-12-21T10:00:00", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21 10:00:00.25", "2026-12-21T10:00:00.250Z"],
    ["2026-12-21T10:00", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21", "2026-12-21T00:00:00.000Z"],
    ["2026-12-21T12:30:00+02:30", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21T05:00:00-0500", "2026-12-21T10:00:00.000Z"],
    ["2026-12-21T11:00:00+01", "2026-12-21T10:00:00.000Z"],
    ["2027-01-01T00:30:00+01:00", "2026-12-31T23:30:00.000Z"],
    ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"],
  ];
  for (const [input, expected] of cases) {
    void it(`${input} → ${expected}`, () => assert.equal(parseIsoDate(input)?.toISOString(), expected));
  }
  for (const bad of ["", "tomorrow", "2026-13-01", "2025-02-29", "2026-12-21T25:00", "2026-12-21T10:60", "2026-12-21T10:00:00+25:00", "12/21/2026"]) {
    void it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseIsoDate(bad), undefined));
  }
});

void describe("writing", () => {
  const record: TokenRecord = {
    name: "ci",
    hash: hashToken("secret"),
    expires: new Date("2026-12-21T10:00:00.123Z"),
    createdAt: new Date("2025-12-21T10:00:00Z"),
    scopes: ["read", "delete"],
  };

  void it("writes dates as Python's isoformat() of an aware UTC datetime", () => {
    assert.equal(formatPythonIsoDate(new Date("2026-12-21T10:00:00.123Z")), "2026-12-21T10:00:00.123000+00:00");
    assert.equal(formatPythonIsoDate(new Date("2026-12-21T10:00:00Z")), "2026-12-21T10:00:00.000000+00:00");
  });

  void it("writes the source design's field names and order", () => {
    const [written] = JSON.parse(formatTokensFile([record, { ...record, name: "forever", expires: null }])) as unknown[];
    assert.deepEqual(Object.keys(written as object), ["name", "hash", "expires", "created_at", "scopes"]);
    assert.deepEqual(written, {
      name: "ci",
      hash: hashToken("secret"),
      expires: "2026-12-21T10:00:00.123000+00:00",
      created_at: "2025-12-21T10:00:00.000000+00:00",
      scopes: ["read", "delete"],
    });
  });

  void it("round-trips through a file with mode 0600 and no temp files left", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "tokens.json");
      const records = [record, { ...record, name: "forever", expires: null, scopes: [] }];
      await writeTokensFile(path, records);
      assert.deepEqual(await readTokensFile(path), records);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.deepEqual(await readdir(dir), ["tokens.json"]);
    });
  });

  void it("replaces an existing file whole", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, "tokens.json");
      await writeFile(path, "garbage that is much longer than the new content will be ".repeat(20), { mode: 0o644 });
      await writeTokensFile(path, []);
      assert.equal(await readFile(path, "utf8"), "[]\n");
      assert.equal((await stat(path)).mode & 0o777, 0o600);
    });
  });

  void it("reads a missing file as no tokens", async () => {
    await withTempDir(async (dir) => {
      assert.deepEqual(await readTokensFile(join(dir, "absent.json")), []);
    });
  });

  void it("fails (without leaving a temp file) when the directory does not exist", async () => {
    await withTempDir(async (dir) => {
      await assert.rejects(writeTokensFile(join(dir, "no", "tokens.json"), [record]), { code: "ENOENT" });
      assert.deepEqual(await readdir(dir), []);
    });
  });
});

void describe("isExpired", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  void it("never for null", () => assert.equal(isExpired({ expires: null }, now), false));
  void it("after the expiry instant", () => {
    assert.equal(isExpired({ expires: new Date("2025-12-31T23:59:59Z") }, now), true);
    assert.equal(isExpired({ expires: now }, now), true);
    assert.equal(isExpired({ expires: new Date("2026-01-01T00:00:01Z") }, now), false);
  });
});
