import { test } from "node:test";
import assert from "node:assert/strict";
import { comparableVersion, distributionVersion, isDistributionOf } from "./python-versions.js";

test("PEP 440: equal versions compare equal in their normal form", () => {
  const equal: Array<[string, string]> = [
    ["1.0", "1.0.0"],
    ["1.0RC1", "1.0rc1"],
    ["1.0c1", "1.0rc1"],
    ["1.0-alpha.2", "1.0a2"],
    ["v2", "2"],
    ["1.0-1", "1.0.post1"],
    ["1.0.post", "1.0.post0"],
    ["1.0-dev3", "1.0.dev3"],
    ["0!1.2", "1.2"],
    ["1.2+Ubuntu-1", "1.2+ubuntu.1"],
    ["01.002", "1.2"],
  ];
  for (const [a, b] of equal) assert.equal(comparableVersion(a), comparableVersion(b), `${a} == ${b}`);
  const different: Array<[string, string]> = [
    ["1.0", "1.0.1"],
    ["1.0a1", "1.0b1"],
    ["1.0", "1.0.post1"],
    ["1!1.0", "1.0"],
    ["1.0+local", "1.0"],
  ];
  for (const [a, b] of different) assert.notEqual(comparableVersion(a), comparableVersion(b), `${a} != ${b}`);
});

test("the version of a distribution file, for the project it belongs to", () => {
  assert.equal(distributionVersion("requests-2.32.3-py3-none-any.whl", "requests"), "2.32.3");
  assert.equal(distributionVersion("Django_Rest_Framework-3.15.1-py3-none-any.whl", "django-rest-framework"), "3.15.1");
  assert.equal(distributionVersion("numpy-2.0.0-1-cp312-cp312-manylinux_2_17_x86_64.whl", "numpy"), "2.0.0");
  assert.equal(distributionVersion("requests-2.32.3.tar.gz", "requests"), "2.32.3");
  // The name part of an sdist may contain dashes and other spellings.
  assert.equal(distributionVersion("zope.interface-6.4.post2.tar.gz", "zope-interface"), "6.4.post2");
  assert.equal(distributionVersion("vault-probe-gamma-1.0.zip", "vault-probe-gamma"), "1.0");
  assert.equal(distributionVersion("demo-1.0-py3.8.egg", "demo"), "1.0");
  // Another project's file, or no distribution at all.
  assert.equal(distributionVersion("requests-oauthlib-2.0.0.tar.gz", "requests"), "oauthlib-2.0.0");
  assert.equal(isDistributionOf("requests-oauthlib-2.0.0.tar.gz", "requests", "2.0.0"), false);
  assert.equal(distributionVersion("requests_oauthlib-2.0.0-py2.py3-none-any.whl", "requests"), undefined);
  assert.equal(distributionVersion("requests-2.32.3.tar.gz.asc", "requests"), undefined);
  assert.equal(isDistributionOf("requests-2.32.3-py3-none-any.whl", "requests", "2.32.3.0"), true);
  assert.equal(isDistributionOf("requests-2.32.3-py3-none-any.whl", "requests", "2.32.3.0", true), false);
});
