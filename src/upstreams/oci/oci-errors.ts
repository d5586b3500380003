import type { ErrorRenderer } from "../../core/error-rendering.js";
import type { ErrorKind } from "../../core/errors.js";

/** Sent with every answer of the registry API: clients check it on `/v2/`. */
export const REGISTRY_API_VERSION = { "docker-distribution-api-version": "registry/2.0" } as const;

/**
 * The OCI distribution spec's error body (`{"errors": [{"code", "message", "detail"}]}`), which
 * docker, skopeo, podman and containerd print. A `not_found` says what was unknown by the kind
 * of path: a manifest, a blob, or the repository.
 */
export const renderOciError: ErrorRenderer = (report) => ({
  contentType: "application/json; charset=utf-8",
  body: { errors: [{ code: report.code ?? ociCode(report.kind, report.path), message: report.message, detail: null }] },
  headers: REGISTRY_API_VERSION,
});

function ociCode(kind: ErrorKind, path: string): string {
  switch (kind) {
    case "not_found":
      if (/\/manifests\/[^/]+$/.test(path)) return "MANIFEST_UNKNOWN";
      if (/\/blobs\/[^/]+$/.test(path)) return "BLOB_UNKNOWN";
      return "NAME_UNKNOWN";
    case "unauthenticated":
      return "UNAUTHORIZED";
    case "forbidden":
      return "DENIED";
    case "rate_limited":
      return "TOOMANYREQUESTS";
    case "method_not_allowed":
    case "not_supported":
      return "UNSUPPORTED";
    case "bad_request":
      return "NAME_INVALID";
    default:
      return "UNKNOWN";
  }
}
