import type { DigestAlgorithm, ExpectedDigest } from "../../core/cache/artifact-ref.js";
import { VaultError } from "../../core/errors.js";

/**
 * What a registry request below `/v2/` (or the backend's prefix) names, per the OCI
 * distribution spec: `<name>/manifests/<reference>`, `<name>/blobs/<digest>`, `<name>/tags/list`.
 * Repository names may have several components (`library/debian`, `team/app/api`).
 */
export type RegistryRequest =
  | { readonly kind: "manifest"; readonly name: string; readonly reference: string; readonly digest: ExpectedDigest | undefined }
  | { readonly kind: "blob"; readonly name: string; readonly digest: ExpectedDigest }
  | { readonly kind: "tags"; readonly name: string };

/** The spec's repository name grammar. */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const HEX_LENGTH: Readonly<Partial<Record<DigestAlgorithm, number>>> = { sha256: 64, sha512: 128 };
const MAX_NAME_LENGTH = 255;

export function parseRegistryPath(path: string): RegistryRequest {
  if (path.endsWith("/tags/list")) return { kind: "tags", name: checkName(path.slice(0, -"/tags/list".length)) };
  const manifests = path.lastIndexOf("/manifests/");
  if (manifests !== -1) {
    const name = checkName(path.slice(0, manifests));
    const reference = path.slice(manifests + "/manifests/".length);
    if (DIGEST.test(reference)) return { kind: "manifest", name, reference, digest: parseDigest(reference) };
    if (!TAG.test(reference)) throw new VaultError("bad_request", `invalid tag: ${reference}`, { code: "TAG_INVALID" });
    return { kind: "manifest", name, reference, digest: undefined };
  }
  const blobs = path.lastIndexOf("/blobs/");
  if (blobs !== -1) {
    const name = checkName(path.slice(0, blobs));
    return { kind: "blob", name, digest: parseDigest(path.slice(blobs + "/blobs/".length)) };
  }
  throw new VaultError("not_found", "the registry API serves <name>/manifests/<reference>, <name>/blobs/<digest> and <name>/tags/list");
}

/** `sha256:<hex>` (or sha512) as an expected digest; other algorithms cannot be verified and are refused. */
export function parseDigest(text: string): ExpectedDigest {
  const match = DIGEST.exec(text);
  const algorithm = match?.[1] as DigestAlgorithm | undefined;
  const hex = match?.[2];
  const length = algorithm === undefined ? undefined : HEX_LENGTH[algorithm];
  if (algorithm === undefined || hex === undefined || length === undefined) {
    throw new VaultError("bad_request", `unsupported digest: ${text} (sha256 and sha512 are)`, { code: "DIGEST_INVALID" });
  }
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) throw new VaultError("bad_request", `invalid digest: ${text}`, { code: "DIGEST_INVALID" });
  return { algorithm, hex };
}

export function formatDigest(digest: ExpectedDigest): string {
  return `${digest.algorithm}:${digest.hex}`;
}

function checkName(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME.test(name)) {
    throw new VaultError("bad_request", `invalid repository name: ${name}`, { code: "NAME_INVALID" });
  }
  return name;
}
