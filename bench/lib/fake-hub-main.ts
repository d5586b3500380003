/**
 * The Hugging Face hub of the benchmarks, as a process of its own: the tests' fake hub and its
 * "CDN" (`tests/support/huggingface/fake-hub.ts`: LFS files answered by the hub with a 302 to the
 * CDN) started here, so the 1 GiB it serves and its CPU time are not the harness's. Started by
 * `startFakeHub` (`fake-hub.ts`):
 *
 *     node fake-hub-main.js <ready-file> <bytes>
 *
 * The hub's `resolve` answers for the published files come from a small front here, with the
 * headers the fake hub gives (302 to its CDN, `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`,
 * the pointer's git blob id as `ETag`): the fake hub hashes the whole file (SHA-256) on every
 * resolve request, ~0.15 s per 256 MiB, which would swamp any first-byte figure; the front uses
 * the hash computed once at publish. The bytes come from the fake hub's CDN. Any other hub path
 * is forwarded to the fake hub itself.
 *
 * The fake hub serves files from memory only (`Buffer`s): this process holds ONE buffer of
 * `<bytes>` random bytes. Each `POST /publish` on its control server changes the buffer's first 32
 * bytes (new random ones), commits it as a new LFS file of the repo `bench/model` (so its SHA-256
 * is new: a cold miss for a cache keyed by content) and answers JSON `{file, sha256, size}`.
 * Earlier files share the buffer, so only the latest one published has the bytes its SHA-256
 * says: the benchmark uses each file in the round it was published for. `GET /stats` answers the
 * requests the hub and the CDN got so far, by method. Once listening it writes `<ready-file>`
 * (JSON: hub URL, CDN URL, control URL). SIGTERM closes it.
 */
import { randomFillSync } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { FakeHub, gitBlobId, sha256Hex } from "../../tests/support/huggingface/fake-hub.js";

/** Not exported: the harness imports this module's types only (importing a value would run `main`). */
const FAKE_HUB_REPO = "bench/model";

export interface FakeHubReady {
  /** The model repo the files are published to (`org/name`). */
  readonly repo: string;
  readonly hubUrl: string;
  readonly cdnUrl: string;
  readonly controlUrl: string;
}

export interface PublishedFile {
  /** The file's path in the repo (resolve it at `main`). */
  readonly file: string;
  readonly sha256: string;
  readonly size: number;
}

export interface FakeHubStats {
  readonly hub: Readonly<Record<string, number>>;
  readonly cdn: Readonly<Record<string, number>>;
}

async function main(): Promise<void> {
  const [readyFile, sizeArg] = process.argv.slice(2);
  const size = Number(sizeArg);
  if (readyFile === undefined || !Number.isInteger(size) || size < 64) throw new Error("usage: fake-hub-main.js <ready-file> <bytes ≥ 64>");
  const content = Buffer.allocUnsafe(size);
  for (let at = 0; at < size; at += 64 * 1024 * 1024) randomFillSync(content, at, Math.min(64 * 1024 * 1024, size - at));

  const hub = await new FakeHub().start();
  hub.addRepo("model", FAKE_HUB_REPO);
  let published = 0;
  /** The published files' resolve answers: path → commit and SHA-256. */
  const files = new Map<string, { commit: string; sha256: string }>();
  const frontRequests: Array<{ method: string }> = [];
  const front = createServer((request, response) => {
    const method = request.method ?? "GET";
    frontRequests.push({ method });
    const path = new URL(request.url ?? "/", "http://hub").pathname;
    // At `main` or at the file's commit: the vault resolves `main` to a commit, then asks for the
    // file at that commit (the fake hub itself would hash the whole file again for that answer).
    const resolve = new RegExp(`^/${FAKE_HUB_REPO}/resolve/([^/]+)/(.+)$`).exec(path);
    const candidate = resolve === null ? undefined : files.get(decodeURIComponent(resolve[2] ?? ""));
    const file = candidate !== undefined && (resolve?.[1] === "main" || resolve?.[1] === candidate.commit) ? candidate : undefined;
    if (file !== undefined && (method === "GET" || method === "HEAD")) {
      request.resume();
      response.writeHead(302, {
        location: `${hub.cdnUrl}/objects/${file.sha256}?X-Amz-Signature=signed`,
        "x-repo-commit": file.commit,
        "x-linked-etag": `"${file.sha256}"`,
        "x-linked-size": String(size),
        etag: `"${gitBlobId(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${file.sha256}\n`))}"`,
        "content-length": "0",
      });
      response.end();
      return;
    }
    // Anything else: the fake hub itself.
    const forwarded = httpRequest(`${hub.url}${request.url ?? "/"}`, { method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.on("error", () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
  const counts = (requests: ReadonlyArray<{ method: string }>): Record<string, number> => {
    const byMethod: Record<string, number> = {};
    for (const request of requests) byMethod[request.method] = (byMethod[request.method] ?? 0) + 1;
    return byMethod;
  };

  const control = createServer((request, response) => {
    const answer = (status: number, body: unknown): void => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    request.resume();
    if (request.method === "POST" && request.url === "/publish") {
      randomFillSync(content, 0, 32);
      const file = `model-${String(++published).padStart(3, "0")}.safetensors`;
      const commit = hub.commit("model", FAKE_HUB_REPO, { [file]: { content, lfs: true } });
      const body: PublishedFile = { file, sha256: sha256Hex(content), size };
      files.set(file, { commit, sha256: body.sha256 });
      return answer(200, body);
    }
    if (request.method === "GET" && request.url === "/stats") {
      const body: FakeHubStats = { hub: counts(frontRequests), cdn: counts(hub.cdnRequests) };
      return answer(200, body);
    }
    answer(404, { error: "not found" });
  });
  await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));

  const ready: FakeHubReady = { repo: FAKE_HUB_REPO, hubUrl: `http://127.0.0.1:${(front.address() as AddressInfo).port}`, cdnUrl: hub.cdnUrl, controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}` };
  writeFileSync(`${readyFile}.tmp`, JSON.stringify(ready));
  renameSync(`${readyFile}.tmp`, readyFile);

  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    for (const server of [control, front]) {
      server.close();
      server.closeAllConnections();
    }
    hub.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("fake hub: close failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", close);
  process.on("SIGINT", close);
}

main().catch((error: unknown) => {
  console.error("fake hub failed to start:", error);
  process.exit(1);
});
