import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePackageLock } from "./package-lock.js";

test("lockfile v3: registry tarballs by their resolved path, whatever the host; links, bundles and git left out", () => {
  const lock = JSON.stringify({
    name: "app",
    lockfileVersion: 3,
    packages: {
      "": { name: "app", dependencies: { lodash: "^4" } },
      "node_modules/lodash": { version: "4.17.21", resolved: "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz", integrity: "sha512-x" },
      "node_modules/@acme/lib": { version: "1.0.0", resolved: "http://vault.internal:8080/npm/@acme/lib/-/lib-1.0.0.tgz" },
      "node_modules/a/node_modules/@acme/lib": { version: "1.0.0", resolved: "https://registry.npmjs.org/@acme/lib/-/lib-1.0.0.tgz" },
      "node_modules/@acme/other": { version: "2.0.0", resolved: "https://artifactory.example/api/npm/npm/@acme%2fother/-/other-2.0.0.tgz" },
      "node_modules/aliased": { name: "real", version: "3.0.0", resolved: "https://registry.npmjs.org/real/-/real-3.0.0.tgz" },
      "node_modules/no-resolved": { version: "1.2.3" },
      "node_modules/ws": { version: "1.0.0", link: true },
      "node_modules/bundled": { version: "1.0.0", inBundle: true },
      "packages/workspace": { version: "0.0.1" },
      "node_modules/from-git": { version: "1.0.0", resolved: "git+ssh://git@github.com/org/from-git.git#abc" },
      "node_modules/local": { version: "1.0.0", resolved: "file:../local" },
    },
  });
  const { tarballs, skipped } = parsePackageLock(lock);
  assert.deepEqual(
    tarballs.map((tarball) => tarball.path),
    ["lodash/-/lodash-4.17.21.tgz", "@acme/lib/-/lib-1.0.0.tgz", "@acme/other/-/other-2.0.0.tgz", "real/-/real-3.0.0.tgz", "no-resolved/-/no-resolved-1.2.3.tgz"],
  );
  assert.deepEqual(tarballs[3], { name: "real", version: "3.0.0", path: "real/-/real-3.0.0.tgz" });
  assert.deepEqual(
    skipped.map((entry) => entry.text),
    ["from-git@1.0.0", "local@1.0.0"],
  );
});

test("lockfile v1: nested dependencies", () => {
  const lock = JSON.stringify({
    lockfileVersion: 1,
    dependencies: {
      a: { version: "1.0.0", resolved: "https://registry.npmjs.org/a/-/a-1.0.0.tgz", dependencies: { b: { version: "2.0.0", resolved: "https://registry.npmjs.org/b/-/b-2.0.0.tgz" } } },
    },
  });
  assert.deepEqual(
    parsePackageLock(lock).tarballs.map((tarball) => tarball.path),
    ["a/-/a-1.0.0.tgz", "b/-/b-2.0.0.tgz"],
  );
});

test("not a lockfile", () => {
  assert.throws(() => parsePackageLock("{"), /not JSON/);
  assert.throws(() => parsePackageLock('{"name": "x"}'), /no lockfileVersion/);
});
