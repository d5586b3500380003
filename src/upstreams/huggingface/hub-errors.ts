import type { ErrorRenderer } from "../../core/error-rendering.js";

/**
 * The hub's error answers: `{"error": "..."}` with an `X-Error-Code` on a 404, which the clients
 * turn into their own errors — `@huggingface/hub`'s `fileDownloadInfo` answers `null` for
 * `EntryNotFound`; `huggingface_hub` raises `EntryNotFoundError` (which `transformers` expects
 * for optional files) or `RepositoryNotFoundError`. A 404 for a file is `EntryNotFound`, for an
 * API path `RepoNotFound`: the vault cannot tell a missing repo from a missing file by the
 * hub's status alone.
 */
export const renderHubError: ErrorRenderer = (report) => ({
  contentType: "application/json; charset=utf-8",
  body: { error: report.message },
  ...(report.kind === "not_found" ? { headers: { "x-error-code": report.path.includes("/resolve/") ? "EntryNotFound" : "RepoNotFound" } } : {}),
});
