import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { iniEntries, jsonObject, NPMRC, PIP_INI, scanToml, splitLines, tomlKeyParts, tomlSimpleValue, tomlTables, upsertIni } from "./config-text.js";

const set = (key: string, value: string) => ({ matches: (candidate: string) => candidate.trim() === key, line: `${key} = ${value}` });

describe("upsertIni", () => {
  it("adds a missing file's section and key", () => {
    assert.equal(upsertIni(undefined, "global", [set("index-url", "U")], PIP_INI), "[global]\nindex-url = U\n");
    assert.equal(upsertIni("", undefined, [{ matches: (key) => key === "registry", line: "registry=R" }], NPMRC), "registry=R\n");
  });

  it("replaces a key in place, with its continuation lines, and drops its duplicates", () => {
    const text = "[global]\nindex-url = a\n  b\ntimeout = 3\nindex-url = c\n[other]\nindex-url = d\n";
    assert.equal(upsertIni(text, "global", [set("index-url", "U")], PIP_INI), "[global]\nindex-url = U\ntimeout = 3\n[other]\nindex-url = d\n");
  });

  it("adds a key after the section's last entry, before the blank lines and comments that lead to the next section", () => {
    const text = "[global]\ntimeout = 3\n\n# next\n[install]\nx = 1\n";
    assert.equal(upsertIni(text, "global", [set("index-url", "U")], PIP_INI), "[global]\ntimeout = 3\nindex-url = U\n\n# next\n[install]\nx = 1\n");
    assert.equal(upsertIni("[global]\n[install]\nx = 1\n", "global", [set("k", "v")], PIP_INI), "[global]\nk = v\n[install]\nx = 1\n");
  });

  it("appends a missing section after the others, one blank line apart", () => {
    assert.equal(upsertIni("[install]\nx = 1\n\n\n", "global", [set("k", "v")], PIP_INI), "[install]\nx = 1\n\n[global]\nk = v\n");
  });

  it("npmrc: top-level keys go before the first section, after the last top-level key", () => {
    const text = "; comment\nfund=false\n\n[section]\nregistry=x\n";
    assert.equal(upsertIni(text, undefined, [{ matches: (key) => key === "registry", line: "registry=R" }], NPMRC), "; comment\nfund=false\nregistry=R\n\n[section]\nregistry=x\n");
    const commentsOnly = "# only a comment\n\n[section]\nx=1\n";
    assert.equal(upsertIni(commentsOnly, undefined, [{ matches: (key) => key === "registry", line: "registry=R" }], NPMRC), "# only a comment\nregistry=R\n\n[section]\nx=1\n");
  });

  it("npmrc keys may contain colons; indented lines are entries of their own", () => {
    const entries = iniEntries("//h:1/npm/:_authToken=abc\n  registry = x\n", NPMRC);
    assert.deepEqual(
      entries.map((entry) => [entry.key, entry.value]),
      [
        ["//h:1/npm/:_authToken", "abc"],
        ["registry", "x"],
      ],
    );
  });

  it("keeps CRLF line endings and a file without a final newline", () => {
    assert.equal(upsertIni("[global]\r\ntimeout = 3\r\n", "global", [set("k", "v")], PIP_INI), "[global]\r\ntimeout = 3\r\nk = v\r\n");
    assert.equal(upsertIni("[global]\ntimeout = 3", "global", [set("k", "v")], PIP_INI), "[global]\ntimeout = 3\nk = v\n");
    assert.deepEqual(splitLines("a\r\nb"), { lines: ["a", "b"], eol: "\r\n" });
  });
});

describe("TOML scanning", () => {
  it("finds tables (quoted keys with brackets and dots included) and keys, skipping multi-line values", () => {
    const lines = [
      'server = "https://registry-1.docker.io"',
      "list = [",
      '  ["[not.a.table]"],',
      "]",
      'text = """',
      "[also not a table]",
      '"""',
      '[host."http://[::1]:8080"]',
      '  capabilities = ["pull"]',
      '[host."http://[::1]:8080".header]',
      "[[index]] # a comment",
      "name = 'x' # trailing",
    ];
    const items = scanToml(lines).filter((item) => item.kind !== "other");
    assert.deepEqual(
      items.map((item) => [item.kind, item.name.join("|"), item.start, item.end, item.arrayTable]),
      [
        ["key", "server", 0, 1, false],
        ["key", "list", 1, 4, false],
        ["key", "text", 4, 7, false],
        ["table", "host|http://[::1]:8080", 7, 8, false],
        ["key", "capabilities", 8, 9, false],
        ["table", "host|http://[::1]:8080|header", 9, 10, false],
        ["table", "index", 10, 11, true],
        ["key", "name", 11, 12, false],
      ],
    );
    const tables = tomlTables(lines);
    assert.deepEqual(
      tables.map((table) => [table.header?.name.join("|"), table.start, table.end, table.keys.length]),
      [
        [undefined, 0, 7, 3],
        ["host|http://[::1]:8080", 7, 9, 1],
        ["host|http://[::1]:8080|header", 9, 10, 0],
        ["index", 10, 12, 1],
      ],
    );
  });

  it("unquotes key parts and reads simple values", () => {
    assert.deepEqual(tomlKeyParts(`a . "b.c" . 'd"e'`), ["a", "b.c", 'd"e']);
    assert.equal(tomlSimpleValue('name = "a\\"b" # c'), 'a"b');
    assert.equal(tomlSimpleValue("name = 'lit'"), "lit");
    assert.equal(tomlSimpleValue("default = true"), true);
    assert.equal(tomlSimpleValue("n = 3"), undefined);
  });
});

describe("jsonObject", () => {
  it("reads an object, treats a missing or blank file as empty, refuses anything else", () => {
    assert.deepEqual(jsonObject(undefined, "f"), {});
    assert.deepEqual(jsonObject(" \n", "f"), {});
    assert.deepEqual(jsonObject('{"a":1}', "f"), { a: 1 });
    assert.throws(() => jsonObject("[1]", "f.json"), /cannot merge into f\.json: it is not a JSON object/);
    assert.throws(() => jsonObject("{", "f.json"), /cannot merge into f\.json: it is not valid JSON/);
  });
});
