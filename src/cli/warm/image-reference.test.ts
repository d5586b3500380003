import { test } from "node:test";
import assert from "node:assert/strict";
import { parseImageReference, parsePlatform, platformMatches } from "./image-reference.js";

const DIGEST = `sha256:${"a".repeat(64)}`;

test("image references: tags, digests, registry hosts dropped", () => {
  assert.deepEqual(parseImageReference("debian"), { name: "debian", reference: "latest" });
  assert.deepEqual(parseImageReference("debian:12"), { name: "debian", reference: "12" });
  assert.deepEqual(parseImageReference("library/debian:12-slim"), { name: "library/debian", reference: "12-slim" });
  assert.deepEqual(parseImageReference("docker.io/library/debian:12"), { name: "library/debian", reference: "12" });
  assert.deepEqual(parseImageReference("localhost:5000/team/app"), { name: "team/app", reference: "latest" });
  assert.deepEqual(parseImageReference("localhost/team/app:1"), { name: "team/app", reference: "1" });
  assert.deepEqual(parseImageReference(`ghcr.io/org/app:1.0@${DIGEST}`), { name: "org/app", reference: DIGEST });
  assert.deepEqual(parseImageReference(`team/app@${DIGEST}`), { name: "team/app", reference: DIGEST });
  for (const bad of ["", "Debian:12", "debian:", "debian@sha256:abc", "debian:.bad", "a//b"]) assert.throws(() => parseImageReference(bad), Error, bad);
});

test("platforms", () => {
  assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.throws(() => parsePlatform("linux"), /os\/architecture/);
  const wanted = [parsePlatform("linux/amd64"), parsePlatform("linux/arm/v7")];
  assert.equal(platformMatches({ os: "linux", architecture: "amd64" }, wanted), true);
  assert.equal(platformMatches({ os: "linux", architecture: "amd64", variant: "v3" }, wanted), true);
  assert.equal(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, wanted), false);
  assert.equal(platformMatches({ os: "unknown", architecture: "unknown" }, wanted), false);
  assert.equal(platformMatches(undefined, wanted), false);
});
