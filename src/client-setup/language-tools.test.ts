import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CliError } from "./failure.js";
import { goSetup } from "./go-tool.js";
import { huggingFaceSetup } from "./huggingface-tool.js";
import { mavenSetup } from "./maven-tool.js";
import { bundlerKey, bundlerSetup, gemSetup } from "./ruby-tools.js";
import type { ConfigFile, SetupInput, SetupTool } from "./setup-tool.js";
import { parseVaultUrl } from "./vault-address.js";

const TOKEN = "avt_unit&Token<0123>";
const HOME = "/home/u";

function input(overrides: Partial<SetupInput> & { url?: string } = {}): SetupInput {
  const { url = "http://vault.internal:8080", ...rest } = overrides;
  return {
    vault: parseVaultUrl(url, "--url"),
    prefix: undefined,
    token: undefined,
    home: HOME,
    env: {},
    registry: "docker.io",
    apt: { suites: [], components: [], signedBy: undefined, proxy: false, proxyHosts: [], release: undefined },
    ...rest,
  };
}

function only(tool: SetupTool, given: SetupInput): ConfigFile {
  const plan = tool.plan(given);
  assert.equal(plan.files.length, 1);
  const [file] = plan.files;
  assert.ok(file !== undefined);
  return file;
}

const lines = (...text: string[]): string => `${text.join("\n")}\n`;
const notesOf = (tool: SetupTool, given: SetupInput): string => tool.plan(given).notes.join("\n");

describe("setup go: GOPROXY in the go command's env file", () => {
  it("finds the file as the go command does: $GOENV, $XDG_CONFIG_HOME/go/env, ~/.config/go/env", () => {
    assert.equal(only(goSetup, input()).path, "/home/u/.config/go/env");
    assert.equal(only(goSetup, input({ env: { XDG_CONFIG_HOME: "/x" } })).path, "/x/go/env");
    assert.equal(only(goSetup, input({ env: { XDG_CONFIG_HOME: "/x", GOENV: "/g/env" } })).path, "/g/env");
    assert.match(notesOf(goSetup, input({ env: { GOENV: "off" } })), /GOENV is off/);
    assert.match(notesOf(goSetup, input({ env: { GOPROXY: "direct" } })), /GOPROXY is set in this environment/);
  });

  it("sets GOPROXY (the prefix included) and keeps every other line; a second run changes nothing", () => {
    const file = only(goSetup, input({ prefix: "/mirrors/go/" }));
    assert.equal(file.snippet, "GOPROXY=http://vault.internal:8080/mirrors/go/\n");
    assert.equal(file.secret, false);
    const existing = lines("GOPRIVATE=git.corp.example", "GOPROXY=https://proxy.golang.org,direct", "GOFLAGS=-mod=mod", "GOPROXY=duplicate");
    const merged = file.merge(existing).text;
    assert.equal(merged, lines("GOPRIVATE=git.corp.example", "GOPROXY=http://vault.internal:8080/mirrors/go/", "GOFLAGS=-mod=mod"));
    assert.equal(file.merge(merged).text, merged);
    assert.equal(file.merge(undefined).text, "GOPROXY=http://vault.internal:8080/mirrors/go/\n");
    assert.equal(file.merge("GOSUMDB=off\r\n").text, "GOSUMDB=off\r\nGOPROXY=http://vault.internal:8080/mirrors/go/\r\n");
    assert.equal(file.merge("# GOPROXY=x\nXGOPROXY=y").text, "# GOPROXY=x\nXGOPROXY=y\nGOPROXY=http://vault.internal:8080/mirrors/go/\n");
  });

  it("a token goes into an https GOPROXY as the password, and the file is secret", () => {
    const file = only(goSetup, input({ url: "https://vault.example.com", token: TOKEN }));
    assert.equal(file.snippet, `GOPROXY=https://x:${encodeURIComponent(TOKEN)}@vault.example.com/go/\n`);
    assert.equal(file.secret, true);
    assert.ok(!notesOf(goSetup, input({ url: "https://vault.example.com", token: TOKEN })).includes(TOKEN));
  });

  it("a token with an http URL is refused, saying why, without the token", () => {
    assert.throws(
      () => goSetup.plan(input({ token: TOKEN })),
      (error: Error) => error instanceof CliError && /sends credentials only over https/.test(error.message) && !error.message.includes(TOKEN),
    );
  });
});

describe("setup maven: a mirror (and a server) in ~/.m2/settings.xml", () => {
  const mirror = lines(
    '<?xml version="1.0" encoding="UTF-8"?>',
    "<!-- written by artifact-vault setup maven, which replaces this file when it writes again -->",
    '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">',
    "  <mirrors>",
    "    <mirror>",
    "      <id>artifact-vault</id>",
    "      <mirrorOf>*</mirrorOf>",
    "      <url>http://vault.internal:8080/maven/</url>",
    "    </mirror>",
    "  </mirrors>",
    "</settings>",
  );

  it("the whole settings file, created when there is none", () => {
    const file = only(mavenSetup, input());
    assert.equal(file.path, "/home/u/.m2/settings.xml");
    assert.equal(file.snippet, mirror);
    assert.equal(file.merge(undefined).text, mirror);
    assert.equal(file.merge("  \n").text, mirror);
    assert.equal(file.secret, false);
    assert.match(notesOf(mavenSetup, input()), /Gradle: repositories \{ maven \{ url = uri\("http:\/\/vault\.internal:8080\/maven\/"\); isAllowInsecureProtocol = true \} \}/);
  });

  it("with a token, a server of the same id, the token escaped for XML; the file is secret", () => {
    const file = only(mavenSetup, input({ token: TOKEN }));
    assert.match(file.snippet, /<servers>\n {4}<server>\n {6}<id>artifact-vault<\/id>\n {6}<username>token<\/username>\n {6}<password>avt_unit&amp;Token&lt;0123&gt;<\/password>\n/);
    assert.equal(file.secret, true);
  });

  it("replaces a file it wrote; refuses any other, saying what to add by hand, without the token", () => {
    const file = only(mavenSetup, input({ token: TOKEN, prefix: "/m2/" }));
    assert.equal(file.merge(mirror).text, file.snippet);
    const theirs = lines("<settings>", "  <localRepository>/cache/m2</localRepository>", "</settings>");
    assert.throws(
      () => file.merge(theirs),
      (error: Error) =>
        error instanceof CliError &&
        error.message.includes("<mirrorOf>*</mirrorOf> and <url>http://vault.internal:8080/m2/</url>") &&
        error.message.includes("<username>token</username>") &&
        !error.message.includes(TOKEN),
    );
  });
});

describe("setup gem: the vault as the one source in ~/.gemrc", () => {
  it("a new file; with a token, the source URL's password", () => {
    const file = only(gemSetup, input());
    assert.equal(file.path, "/home/u/.gemrc");
    assert.equal(file.snippet, "---\n:sources:\n- http://vault.internal:8080/rubygems/\n");
    assert.equal(file.merge(undefined).text, file.snippet);
    const secured = only(gemSetup, input({ token: TOKEN }));
    assert.equal(secured.merge(undefined).text, `---\n:sources:\n- http://x:${encodeURIComponent(TOKEN)}@vault.internal:8080/rubygems/\n`);
    assert.equal(secured.secret, true);
    assert.equal(file.secret, false);
  });

  it("replaces :sources:, keeps the other keys and comments", () => {
    const file = only(gemSetup, input({ prefix: "/gems/" }));
    const existing = lines("---", "# mine", ":verbose: true", ":sources:", "- https://rubygems.org/", "- https://gems.corp.example/", "gem: --no-document", ":backtrace: false");
    const merged = file.merge(existing);
    assert.equal(merged.text, lines("---", "# mine", ":verbose: true", ":sources:", "- http://vault.internal:8080/gems/", "gem: --no-document", ":backtrace: false"));
    assert.match((merged.notes ?? []).join("\n"), /replaces the sources it listed/);
    assert.equal(file.merge(merged.text).text, merged.text);
    assert.equal(file.merge("gem: -N\n").text, "gem: -N\n:sources:\n- http://vault.internal:8080/gems/\n");
  });

  it("refuses a file that is not a YAML mapping", () => {
    const file = only(gemSetup, input());
    assert.throws(() => file.merge("- a\n- b\n"), /not a YAML mapping/);
    assert.throws(() => file.merge(":sources: [unclosed\n"), /not valid YAML/);
  });
});

describe("setup bundler: the vault as rubygems.org's mirror in ~/.bundle/config", () => {
  it("spells keys as Bundler's Settings.key_for does", () => {
    assert.equal(bundlerKey("mirror.https://rubygems.org"), "BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/");
    assert.equal(bundlerKey("http://my-vault.internal:8080/rubygems/"), "BUNDLE_HTTP://MY___VAULT__INTERNAL:8080/RUBYGEMS/");
    assert.equal(bundlerKey("jobs"), "BUNDLE_JOBS");
  });

  it("finds the file as Bundler does: $BUNDLE_USER_CONFIG, $BUNDLE_USER_HOME/config, ~/.bundle/config", () => {
    assert.equal(only(bundlerSetup, input()).path, "/home/u/.bundle/config");
    assert.equal(only(bundlerSetup, input({ env: { BUNDLE_USER_HOME: "/b" } })).path, "/b/config");
    assert.equal(only(bundlerSetup, input({ env: { BUNDLE_USER_HOME: "/b", BUNDLE_USER_CONFIG: "/c/conf" } })).path, "/c/conf");
  });

  it("the mirror; with a token, the credentials of the vault's URL; other keys kept", () => {
    const file = only(bundlerSetup, input());
    assert.equal(file.snippet, '---\nBUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://vault.internal:8080/rubygems/"\n');
    assert.equal(file.merge(undefined).text, file.snippet);
    assert.equal(file.secret, false);
    const secured = only(bundlerSetup, input({ token: TOKEN }));
    assert.equal(secured.secret, true);
    const existing = lines("---", 'BUNDLE_JOBS: "4"', 'BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://old.invalid/"', 'BUNDLE_PATH: "vendor/bundle"');
    const merged = secured.merge(existing).text;
    assert.equal(
      merged,
      lines(
        "---",
        'BUNDLE_JOBS: "4"',
        'BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://vault.internal:8080/rubygems/"',
        'BUNDLE_PATH: "vendor/bundle"',
        `BUNDLE_HTTP://VAULT__INTERNAL:8080/RUBYGEMS/: "x:${encodeURIComponent(TOKEN)}"`,
      ),
    );
    assert.equal(secured.merge(merged).text, merged);
    assert.ok(!notesOf(bundlerSetup, input({ token: TOKEN })).includes(TOKEN));
  });
});

describe("setup hf: HF_ENDPOINT, printed only", () => {
  it("the endpoint without a trailing slash; with a token, HF_TOKEN in the text and not in the notes", () => {
    const plan = huggingFaceSetup.plan(input({ prefix: "/models/hf/" }));
    assert.ok(plan.printOnly !== undefined && /environment variable/.test(plan.printOnly));
    assert.equal(plan.files[0]?.snippet, "export HF_ENDPOINT=http://vault.internal:8080/models/hf\n");
    assert.match(plan.notes.join("\n"), /hubUrl: "http:\/\/vault\.internal:8080\/models\/hf"/);
    const secured = huggingFaceSetup.plan(input({ token: TOKEN }));
    assert.equal(secured.files[0]?.snippet, `export HF_ENDPOINT=http://vault.internal:8080/hf\nexport HF_TOKEN='${TOKEN}'\n`);
    assert.equal(secured.files[0]?.secret, true);
    assert.ok(!secured.notes.join("\n").includes(TOKEN) && !(secured.printOnly ?? "").includes(TOKEN));
  });
});
