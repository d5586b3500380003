import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pino } from "pino";
import { abortableSleep } from "../core/abortable-sleep.js";
import type { ArtifactRef } from "../core/cache/artifact-ref.js";
import type { ResumeRequest, UpstreamAnswer, UpstreamFetch, Validators } from "../core/cache/artifact-source.js";
import type { ResumeDecision } from "../core/cache/resume-plan.js";
import { VaultError, isVaultError, type ErrorKind } from "../core/errors.js";
import { resumingBody, type ResumeContext } from "./resuming-body.js";

const logger = pino({ level: "silent" });
const ref: ArtifactRef = { backend: "t", cacheKey: "t/file.bin", upstreamPath: "file.bin", freshness: { kind: "immutable" } };
const file = randomBytes(10_000);
const resumable: ResumeDecision = { resumable: true, plan: { total: file.length, ifRange: '"v1"', etag: '"v1"', lastModified: undefined } };

/** `file[from, to)` in chunks of 1000, then an upstream failure of `kind` (none: a clean end). */
function body(from: number, to: number, kind?: ErrorKind): Readable & { destroyedEarly?: boolean } {
  return Readable.from(
    (async function* () {
      for (let at = from; at < to; at += 1000) yield file.subarray(at, Math.min(to, at + 1000));
      if (kind !== undefined) throw new VaultError(kind, `upstream broke off at ${to}`);
    })(),
  );
}

function part(from: number, to: number, kind?: ErrorKind, headers: Record<string, string> = {}): UpstreamAnswer {
  return {
    status: 206,
    headers: { "content-range": `bytes ${from}-${file.length - 1}/${file.length}`, etag: '"v1"', ...headers },
    url: "http://upstream/file.bin",
    body: body(from, to, kind),
  };
}

/** A fetch that answers each resume request with the next of `answers` (a function may throw), recording the calls. */
function upstream(answers: Array<(resume: ResumeRequest) => UpstreamAnswer>): { fetch: UpstreamFetch; calls: Array<{ validators: Validators | undefined; resume: ResumeRequest | undefined }> } {
  const calls: Array<{ validators: Validators | undefined; resume: ResumeRequest | undefined }> = [];
  return {
    calls,
    fetch: async (_ref, validators, _signal, resume) => {
      calls.push({ validators, resume });
      const next = answers.shift();
      if (next === undefined || resume === undefined) throw new Error("unexpected fetch");
      return next(resume);
    },
  };
}

function context(fetch: UpstreamFetch, extra: Partial<ResumeContext> = {}): ResumeContext & { waits: number[] } {
  const waits: number[] = [];
  return {
    ref,
    fetch,
    signal: new AbortController().signal,
    logger,
    decision: resumable,
    settings: { sleep: async (ms) => void waits.push(ms), random: () => 0.5 },
    waits,
    ...extra,
  };
}

async function collect(iterable: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("a body that resumes when the upstream breaks off", () => {
  test("broken off twice: the parts follow on from the exact offsets, after 200 and 400 ms", async () => {
    const { fetch, calls } = upstream([() => part(3000, 7000, "upstream_failed"), () => part(7000, 10_000)]);
    const ctx = context(fetch);
    const bytes = await collect(resumingBody(body(0, 3000, "upstream_timeout"), ctx));
    assert.ok(bytes.equals(file));
    assert.deepEqual(calls, [
      { validators: undefined, resume: { offset: 3000, ifRange: '"v1"' } },
      { validators: undefined, resume: { offset: 7000, ifRange: '"v1"' } },
    ]);
    assert.deepEqual(ctx.waits, [200, 400]);
  });

  test("a body that ends cleanly but short of the length is resumed too", async () => {
    const { fetch, calls } = upstream([() => part(4000, 10_000)]);
    const bytes = await collect(resumingBody(body(0, 4000), context(fetch)));
    assert.ok(bytes.equals(file));
    assert.equal(calls.length, 1);
  });

  test("a whole body passes through without a fetch", async () => {
    const { fetch, calls } = upstream([]);
    assert.ok((await collect(resumingBody(body(0, 10_000), context(fetch)))).equals(file));
    assert.equal(calls.length, 0);
  });

  test("at most three resumes: the fourth break fails, keeping the upstream's error kind", async () => {
    const { fetch, calls } = upstream([() => part(1000, 2000, "upstream_failed"), () => part(2000, 3000, "upstream_failed"), () => part(3000, 4000, "upstream_timeout")]);
    const ctx = context(fetch);
    await assert.rejects(collect(resumingBody(body(0, 1000, "upstream_failed"), ctx)), (error) => isVaultError(error, "upstream_timeout") && /gave up after 3 resumes/.test(error.message));
    assert.equal(calls.length, 3);
    assert.deepEqual(ctx.waits, [200, 400, 800]);
  });

  test("an upstream unreachable on a resume costs an attempt; the next one may succeed", async () => {
    const { fetch, calls } = upstream([
      () => {
        throw new VaultError("upstream_failed", "connect ECONNREFUSED");
      },
      () => part(5000, 10_000),
    ]);
    assert.ok((await collect(resumingBody(body(0, 5000, "upstream_failed"), context(fetch)))).equals(file));
    assert.deepEqual(
      calls.map((call) => call.resume?.offset),
      [5000, 5000],
    );
  });

  test("an answer that is not the rest fails at once, and its body is dropped", async () => {
    const answers: Array<[string, () => UpstreamAnswer, RegExp]> = [
      ["200", () => ({ status: 200, headers: {}, url: "u", body: body(0, 10_000) }), /answered 200/],
      ["wrong offset", () => part(4000, 10_000), /starts at byte 4000, not 5000/],
      ["changed ETag", () => part(5000, 10_000, undefined, { etag: '"v2"' }), /ETag changed/],
    ];
    for (const [name, answer, message] of answers) {
      let dropped: Readable | undefined;
      const { fetch, calls } = upstream([
        () => {
          const made = answer();
          dropped = made.body;
          return made;
        },
      ]);
      await assert.rejects(collect(resumingBody(body(0, 5000, "upstream_failed"), context(fetch))), (error) => isVaultError(error, "upstream_failed") && message.test(error.message), name);
      assert.equal(calls.length, 1, name);
      assert.equal(dropped?.destroyed, true, name);
    }
  });

  test("an unresumable download fails as before, saying why it was not resumed", async () => {
    const { fetch, calls } = upstream([]);
    const decision: ResumeDecision = { resumable: false, reason: "its length is unknown" };
    await assert.rejects(collect(resumingBody(body(0, 5000, "upstream_timeout"), context(fetch, { decision }))), (error) => isVaultError(error, "upstream_timeout") && /not resumed: its length is unknown/.test(error.message));
    assert.equal(calls.length, 0);
  });

  test("an unresumable download that ends short ends: the fill reports the short length", async () => {
    const { fetch } = upstream([]);
    const decision: ResumeDecision = { resumable: false, reason: "its length is unknown" };
    assert.equal((await collect(resumingBody(body(0, 5000), context(fetch, { decision })))).length, 5000);
  });

  test("a failure that is not the upstream's (a plugin's own error) is not resumed", async () => {
    const { fetch, calls } = upstream([]);
    const broken = Readable.from(
      (async function* () {
        yield file.subarray(0, 10);
        throw new Error("plugin bug");
      })(),
    );
    await assert.rejects(collect(resumingBody(broken, context(fetch))), /plugin bug/);
    assert.equal(calls.length, 0);
  });

  test("shutting down during the wait cancels the resume", async () => {
    const { fetch, calls } = upstream([() => part(5000, 10_000)]);
    const download = new AbortController();
    const shutdown = new VaultError("unavailable", "the vault is shutting down");
    const ctx = context(fetch, {
      signal: download.signal,
      settings: {
        sleep: (ms, signal) => {
          download.abort(shutdown);
          return abortableSleep(ms, signal);
        },
      },
    });
    await assert.rejects(collect(resumingBody(body(0, 5000, "upstream_failed"), ctx)), (error) => error === shutdown);
    assert.equal(calls.length, 0);
  });

  test("a consumer that stops early destroys the part being read", async () => {
    const resumed = part(5000, 10_000);
    const { fetch } = upstream([() => resumed]);
    let received = 0;
    for await (const chunk of resumingBody(body(0, 5000, "upstream_failed"), context(fetch))) {
      received += chunk.length;
      if (received > 6000) break;
    }
    assert.equal(resumed.body.destroyed, true);
  });
});
