import { test } from "node:test";
import assert from "node:assert/strict";
import { parseGemfileLock } from "./gemfile-lock.js";
import { rubygemsSource } from "./rubygems-source.js";
import type { WarmContext } from "./warm-run.js";

const LOCK = `GIT
  remote: https://github.com/acme/widget.git
  revision: 0123456789abcdef0123456789abcdef01234567
  specs:
    widget (0.3.0)
      rack (>= 2)

PATH
  remote: engines/billing
  specs:
    billing (1.0.0)

GEM
  remote: https://rubygems.org/
  specs:
    nokogiri (1.16.0-x86_64-linux)
      racc (~> 1.4)
    racc (1.7.3)
    rack (3.0.8)
    rack (3.0.8)

GEM
  remote: http://vault.internal:8080/gems-corp/
  specs:
    corp-auth (2.1.0)

GEM
  remote: https://gems.example.com/
  specs:
    elsewhere (1.0.0)

PLATFORMS
  x86_64-linux

DEPENDENCIES
  nokogiri
  rack (~> 3.0)
  widget!

CHECKSUMS
  rack (3.0.8) sha256=${"a".repeat(64)}

BUNDLED WITH
   2.5.6
`;

test("the gems of GEM sections, each once, with their remote; GIT and PATH gems skipped; dependency, PLATFORMS and CHECKSUMS lines are no gems", () => {
  const { gems, skipped, invalid } = parseGemfileLock(LOCK.replaceAll("\n", "\r\n"));
  assert.deepEqual(gems, [
    { fullName: "nokogiri-1.16.0-x86_64-linux", remote: "https://rubygems.org/" },
    { fullName: "racc-1.7.3", remote: "https://rubygems.org/" },
    { fullName: "rack-3.0.8", remote: "https://rubygems.org/" },
    { fullName: "corp-auth-2.1.0", remote: "http://vault.internal:8080/gems-corp/" },
    { fullName: "elsewhere-1.0.0", remote: "https://gems.example.com/" },
  ]);
  assert.deepEqual(skipped, [
    { text: "widget 0.3.0", reason: "not from a gem source (git: https://github.com/acme/widget.git)" },
    { text: "billing 1.0.0", reason: "not from a gem source (path: engines/billing)" },
  ]);
  assert.deepEqual(invalid, []);
});

test("rubygems.org's gems go to --rubygems-prefix, a remote on the vault names its own backend, another source's are skipped", async () => {
  const { gems } = parseGemfileLock(LOCK);
  const artifacts: string[] = [];
  const skipped: string[] = [];
  const context: WarmContext = {
    document: () => Promise.resolve(undefined),
    artifact: (url, label) => artifacts.push(`${label} ${url.href}`),
    failed: () => assert.fail("nothing fails here"),
    skipped: (label, reason) => skipped.push(`${label}: ${reason}`),
  };
  await rubygemsSource(gems, "rubygems/", new URL("http://vault.internal:8080/")).run(context);
  assert.deepEqual(artifacts, [
    "rubygems: nokogiri-1.16.0-x86_64-linux http://vault.internal:8080/rubygems/gems/nokogiri-1.16.0-x86_64-linux.gem",
    "rubygems: racc-1.7.3 http://vault.internal:8080/rubygems/gems/racc-1.7.3.gem",
    "rubygems: rack-3.0.8 http://vault.internal:8080/rubygems/gems/rack-3.0.8.gem",
    "rubygems: corp-auth-2.1.0 http://vault.internal:8080/gems-corp/gems/corp-auth-2.1.0.gem",
  ]);
  assert.deepEqual(skipped, ["rubygems: elsewhere-1.0.0: from another gem source (https://gems.example.com/)"]);
});

test("a spec line naming no gem file is invalid; text with no GEM, GIT or PATH section is an error", () => {
  const { gems, invalid } = parseGemfileLock("GEM\n  remote: https://rubygems.org/\n  specs:\n    ../../admin (1.0.0)\n    rack (3.0.8)\n");
  assert.deepEqual(gems, [{ fullName: "rack-3.0.8", remote: "https://rubygems.org/" }]);
  assert.deepEqual(invalid, [{ text: "../../admin 1.0.0", reason: "not a gem name and version a gem source serves" }]);
  assert.throws(() => parseGemfileLock("requests==2.32.3\n"), /^Error: no GEM, GIT or PATH section: not a Gemfile\.lock$/);
});
