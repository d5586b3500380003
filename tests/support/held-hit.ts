import type { HeldHit } from "../../src/cache/artifact-cache.js";
import type { ArtifactRef } from "../../src/core/cache/artifact-ref.js";

/** For tests of the held-hit lane alone: one immutable artifact held in memory, at `/files/a` of a `files` backend. */
export const HELD_CONTENTS = Buffer.from("held bytes");

export const HELD_REF: ArtifactRef = { backend: "files", cacheKey: "files/a", upstreamPath: "a", freshness: { kind: "immutable" } };

export const HELD_HIT: HeldHit = {
  info: {
    key: "files/a",
    size: HELD_CONTENTS.length,
    sha256: "ab".repeat(32),
    etag: `"${"ab".repeat(32)}"`,
    contentType: "text/plain",
    createdAt: new Date(0),
    modifiedAt: new Date(0),
    metadata: {},
  },
  contents: HELD_CONTENTS,
  lastModified: new Date(0),
  upstreamHeaders: {},
};
