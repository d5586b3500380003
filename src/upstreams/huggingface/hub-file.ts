import { createHash } from "node:crypto";
import { VaultError } from "../../core/errors.js";
import type { ContentCheck } from "../go/verified-body.js";

/** A file at a commit, as the hub's HEAD on its `resolve` URL describes it. */
export interface HubFileInfo {
  /** The commit the revision named (40 hex). */
  readonly commit: string;
  /** The file's ETag without quotes: the git blob id of a small file (the SHA-256 of an LFS file). */
  readonly etag: string;
  /** An LFS file's SHA-256 (lowercase hex), from `X-Linked-Etag`; undefined for a small file. */
  readonly sha256?: string | undefined;
  readonly size: number;
}

/** The headers a cached pointer keeps (the vault's own names: they never reach a client as such). */
export const POINTER_HEADERS = ["x-repo-commit", "x-vault-hf-etag", "x-vault-hf-sha256", "x-vault-hf-size"] as const;

const COMMIT = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** What an ETag must look like to name a cache key. */
const ETAG = /^[A-Za-z0-9._-]{1,128}$/;

/** An ETag's value: without `W/` and quotes. */
export function etagValue(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  const value = etag.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  return value === "" ? undefined : value;
}

/**
 * Reads the hub's answer to a HEAD on `resolve` (a 200 for a small file, a redirect to the CDN
 * for an LFS file): `X-Repo-Commit` (or the commit asked for), `X-Linked-Etag` (an LFS file's
 * SHA-256) or `ETag`, `X-Linked-Size` or `Content-Length`. Anything else is the hub's fault.
 */
export function fileInfoFromHead(headers: Readonly<Record<string, string>>, options: { commit: string | undefined; redirected: boolean; what: string }): HubFileInfo {
  const fail = (why: string): never => {
    throw new VaultError("upstream_failed", `the hub's answer for ${options.what} ${why}`);
  };
  const commit = headers["x-repo-commit"]?.trim().toLowerCase() ?? options.commit;
  if (commit === undefined || !COMMIT.test(commit)) return fail("names no commit (X-Repo-Commit)");
  const linked = etagValue(headers["x-linked-etag"])?.toLowerCase();
  const sha256 = linked !== undefined && SHA256.test(linked) ? linked : undefined;
  if (options.redirected && sha256 === undefined) return fail("is a redirect without the SHA-256 of an LFS file (X-Linked-Etag)");
  const etag = sha256 ?? etagValue(headers["etag"]);
  if (etag === undefined || !ETAG.test(etag)) return fail("has no usable ETag");
  const sizeText = (sha256 !== undefined ? headers["x-linked-size"] : undefined) ?? headers["content-length"];
  const size = sizeText === undefined || !/^\d{1,15}$/.test(sizeText.trim()) ? undefined : Number(sizeText.trim());
  if (size === undefined) return fail("gives no size (X-Linked-Size or Content-Length)");
  return { commit, etag, sha256, size };
}

/** A pointer's kept headers. */
export function pointerHeaders(info: HubFileInfo): Record<(typeof POINTER_HEADERS)[number], string> {
  return { "x-repo-commit": info.commit, "x-vault-hf-etag": info.etag, "x-vault-hf-sha256": info.sha256 ?? "", "x-vault-hf-size": String(info.size) };
}

/** Reads a cached pointer's kept headers back. */
export function readPointer(headers: Readonly<Record<string, string>>): HubFileInfo {
  const commit = headers["x-repo-commit"] ?? "";
  const etag = headers["x-vault-hf-etag"] ?? "";
  const sha256 = headers["x-vault-hf-sha256"] ?? "";
  const size = Number(headers["x-vault-hf-size"] ?? "x");
  if (!COMMIT.test(commit) || !ETAG.test(etag) || (sha256 !== "" && !SHA256.test(sha256)) || !Number.isSafeInteger(size) || size < 0) {
    throw new VaultError("internal", "a cached Hugging Face file pointer is damaged");
  }
  return { commit, etag, sha256: sha256 === "" ? undefined : sha256, size };
}

/**
 * Checks a small file against its git blob id: the SHA-1 of `blob <size>\0` and the content.
 */
export function gitBlobCheck(blobId: string, size: number, what: string): ContentCheck {
  const hash = createHash("sha1").update(`blob ${size}\0`);
  let seen = 0;
  return {
    update: (chunk) => {
      seen += chunk.length;
      if (seen > size) throw new VaultError("upstream_failed", `${what} is longer than the ${size} bytes the hub announced`);
      hash.update(chunk);
    },
    finish: async () => {
      const actual = hash.digest("hex");
      if (seen !== size || actual !== blobId) throw new VaultError("upstream_failed", `${what} does not match its git blob id ${blobId} (got ${actual}, ${seen} bytes)`);
    },
    abandon: async () => undefined,
  };
}
