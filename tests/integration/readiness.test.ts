/**
 * `GET /ready`: 503, naming the parts that are not ready, until the vault's start-up work is
 * over — the store's walk of its keys, the cache's index, the tokens file — then 200. `/health`
 * stays 200 all along (the vault serves meanwhile).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { readinessOf } from "../../src/app.js";
import { TokenAuthenticator } from "../../src/auth/token-authenticator.js";
import { ArtifactCache } from "../../src/cache/artifact-cache.js";
import { LocalCoordinator } from "../../src/coordination/local-coordinator.js";
import { buildServer } from "../../src/http/server.js";
import { ObjectService } from "../../src/objects/object-service.js";
import { FilesystemDriver } from "../../src/storage/filesystem-driver.js";
import { rawRequest } from "../support/http.js";
import { waitFor } from "../support/process.js";
import { startTestVault, tokenRecords } from "../support/test-vault.js";
import { writeTokensFile } from "../../src/auth/tokens-file.js";

interface ReadyBody {
  readonly status: string;
  readonly not_ready: string[];
  readonly parts: Record<string, string>;
}

describe("/ready, part by part (the vault's own parts, their start-up held)", () => {
  let dir: string;
  const logger = pino({ level: "silent" });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "readiness-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("503 naming what is not ready, until every part is; then 200", async () => {
    let walkStore!: () => void;
    let walkCache!: () => void;
    const driver = await FilesystemDriver.open({ root_path: join(dir, "data"), fsync: false, scanGate: new Promise<void>((resolve) => (walkStore = resolve)) });
    const cacheDriver = await FilesystemDriver.open({ root_path: join(dir, "data"), namespace: "cache", fsync: false, scanGate: new Promise<void>((resolve) => (walkCache = resolve)) });
    const tokensFile = join(dir, "tokens.json");
    await writeTokensFile(tokensFile, (await tokenRecords([{ name: "a", scopes: ["read"] }])).records);
    const authenticator = new TokenAuthenticator(tokensFile, logger);
    const coordinator = new LocalCoordinator();
    const cache = new ArtifactCache({ driver: cacheDriver, logger, spoolDirectory: join(dir, "spool"), negativeTtlMs: 0, coordinator });
    const app = await buildServer({
      logger,
      timeouts: { requestMs: 60_000, bodyMs: 60_000 },
      authenticator,
      objects: new ObjectService(driver, 1024 * 1024),
      coordinator,
      rateLimit: { enabled: false, perTokenPerMinute: 0, perIpPerMinute: 0 },
      readiness: readinessOf(driver, cache, authenticator),
    });
    const ready = async () => {
      const response = await app.inject({ method: "GET", url: "/ready" });
      assert.equal(response.headers["cache-control"], "no-store");
      return { status: response.statusCode, body: response.json<ReadyBody>() };
    };
    try {
      const first = await ready();
      assert.equal(first.status, 503);
      assert.equal(first.body.status, "not ready");
      assert.deepEqual(first.body.not_ready, ["store_index", "cache_index", "tokens"]);
      assert.equal(first.body.parts["store_index"], "indexing the store's keys");
      assert.equal(first.body.parts["backends"], "ready");
      // The vault serves meanwhile.
      assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);

      await authenticator.start();
      await cache.start();
      walkStore();
      await driver.indexed;
      assert.deepEqual((await ready()).body.not_ready, ["cache_index"]);

      walkCache();
      await cache.index.scanned();
      const last = await ready();
      assert.equal(last.status, 200);
      assert.deepEqual(last.body, { status: "ready", service: "artifact-vault", not_ready: [], parts: { store_index: "ready", cache_index: "ready", tokens: "ready", backends: "ready" } });
      assert.equal((await app.inject({ method: "HEAD", url: "/ready" })).statusCode, 200);
      assert.equal((await app.inject({ method: "POST", url: "/ready" })).statusCode, 405);
    } finally {
      await app.close();
      await cache.close();
      authenticator.close();
      await driver.close();
      await cacheDriver.close();
      await coordinator.close();
    }
  });
});

describe("/ready of a started vault", () => {
  for (const storage of ["filesystem", "memory"] as const) {
    test(`${storage}: 200 once the start-up work is over, every part ready`, async () => {
      const vault = await startTestVault({ storage });
      try {
        const answer = await waitFor("/ready to say ready", async () => {
          const response = await rawRequest(vault.url, "/ready");
          return response.status === 200 ? response : undefined;
        });
        assert.deepEqual(answer.json<ReadyBody>().parts, { store_index: "ready", cache_index: "ready", tokens: "ready", backends: "ready" });
      } finally {
        await vault.close();
      }
    });
  }
});
