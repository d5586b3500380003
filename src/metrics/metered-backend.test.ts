import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { VaultError } from "../core/errors.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { UpstreamAnswer } from "../core/cache/artifact-source.js";
import type { Backend, ForwardedRequest } from "../upstreams/backend.js";
import { meteredBackend, statusKind, type UpstreamErrorKind, type UpstreamObserver } from "./metered-backend.js";

class Recorder implements UpstreamObserver {
  readonly requests: string[] = [];
  readonly errors: string[] = [];
  upstreamRequest(backend: string, seconds: number): void {
    assert.ok(seconds >= 0 && seconds < 60, `seconds: ${seconds}`);
    this.requests.push(backend);
  }
  upstreamError(backend: string, kind: UpstreamErrorKind): void {
    this.errors.push(`${backend}:${kind}`);
  }
}

const ref = (path: string): ArtifactRef => ({ backend: "files", cacheKey: `files/${path}`, upstreamPath: path, freshness: { kind: "immutable" } });
const answer = (status: number, body: Readable = Readable.from([])): UpstreamAnswer => ({ status, headers: {}, url: "http://upstream/x", body });

/** A backend whose fetch does what the path says. */
function backendDoing(fetch: Backend["fetch"], extra: Partial<Backend> = {}): Backend {
  return { type: "http", name: "files", prefix: "/files/", resolve: () => ref("x"), fetch, close: async () => undefined, ...extra };
}

describe("meteredBackend", () => {
  it("times every exchange and counts the failed ones by kind", async () => {
    const statuses: Record<string, number> = { ok: 200, partial: 206, same: 304, gone: 404, deleted: 410, refused: 403, limited: 429, broken: 500, unavailable: 503, moved: 301 };
    const recorder = new Recorder();
    const metered = meteredBackend(
      backendDoing(async (wanted) => {
        const status = statuses[wanted.upstreamPath];
        if (status !== undefined) return answer(status);
        if (wanted.upstreamPath === "slow") throw new VaultError("upstream_timeout", "sent no response headers in time");
        if (wanted.upstreamPath === "down") throw new VaultError("upstream_failed", "ECONNREFUSED");
        if (wanted.upstreamPath === "nothing") throw new VaultError("not_found", "no such package");
        throw new TypeError("a plugin's bug");
      }),
      recorder,
    );
    const signal = new AbortController().signal;
    for (const path of [...Object.keys(statuses), "slow", "down", "nothing", "bug"]) {
      await metered.fetch(ref(path), undefined, signal).then(
        (answered) => answered.body.destroy(),
        () => undefined,
      );
    }
    assert.equal(recorder.requests.length, Object.keys(statuses).length + 4);
    assert.deepEqual(recorder.errors.sort(), ["files:failed", "files:other", "files:other", "files:status_4xx", "files:status_4xx", "files:status_5xx", "files:status_5xx", "files:timeout"]);
  });

  it("counts a body that breaks off or stalls, not one its reader stopped", async () => {
    const recorder = new Recorder();
    const failures: Record<string, Error> = {
      cut: new VaultError("upstream_failed", "broke off the response body"),
      stalled: new VaultError("upstream_timeout", "stalled mid-body"),
      stopped: new VaultError("unavailable", "the vault is shutting down"),
    };
    const metered = meteredBackend(backendDoing(async () => answer(200, new Readable({ read() {} }))), recorder);
    for (const [path, failure] of Object.entries(failures)) {
      const answered = await metered.fetch(ref(path), undefined, new AbortController().signal);
      const failed = new Promise((resolve) => answered.body.once("error", resolve));
      answered.body.destroy(failure);
      assert.equal(await failed, failure, "the reader still sees the body's error");
    }
    assert.deepEqual(recorder.errors.sort(), ["files:broken_body", "files:timeout"]);
  });

  it("an exchange the vault gave up is not an upstream error", async () => {
    const recorder = new Recorder();
    const controller = new AbortController();
    const metered = meteredBackend(
      backendDoing(async (_ref, _validators, signal) => {
        controller.abort(new VaultError("unavailable", "the client went away"));
        throw signal.reason;
      }),
      recorder,
    );
    await assert.rejects(metered.fetch(ref("x"), undefined, controller.signal));
    assert.equal(recorder.requests.length, 1);
    assert.deepEqual(recorder.errors, []);
  });

  it("keeps the backend's members, leaves absent the optional ones it lacks, and meters forwarded requests", async () => {
    const recorder = new Recorder();
    const plain = meteredBackend(backendDoing(async () => answer(200)), recorder);
    assert.equal(typeof plain.present, "undefined");
    assert.equal(typeof plain.forward, "undefined");
    assert.equal(typeof plain.clientsFollowRedirects, "undefined");
    assert.deepEqual([plain.type, plain.name, plain.prefix], ["http", "files", "/files/"]);

    const forwarding = meteredBackend(
      backendDoing(async () => answer(200), {
        forward: (request: ForwardedRequest) => (request.path === "audit" ? async () => answer(502) : undefined),
        clientsFollowRedirects: () => true,
      }),
      recorder,
    );
    assert.equal(forwarding.clientsFollowRedirects?.(ref("x")), true);
    const request: ForwardedRequest = { method: "POST", path: "audit", query: "", headers: {}, baseUrl: "", body: undefined };
    assert.equal(forwarding.forward?.({ ...request, path: "other" }), undefined);
    const forwarded = await forwarding.forward?.(request)?.(new AbortController().signal);
    assert.equal(forwarded?.status, 502);
    assert.deepEqual(recorder.errors, ["files:status_5xx"]);
  });

  it("classes statuses: 404, 410 and 304 are answers", () => {
    assert.deepEqual(
      [200, 206, 304, 404, 410, 301, 401, 429, 500, 504].map((status) => statusKind(status) ?? "answer"),
      ["answer", "answer", "answer", "answer", "answer", "other", "status_4xx", "status_4xx", "status_5xx", "status_5xx"],
    );
  });
});
