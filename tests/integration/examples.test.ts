/**
 * Every example in `examples/` starts as it stands (`serve --config FILE`, only the port and the
 * address overridden; copied into a temp dir so that their relative data paths land there), is
 * healthy and ready, and serves exactly the backends its comments promise: each answers under
 * its prefix (a `DELETE`, refused by the backend's own route with 405 — no upstream is asked,
 * so no network is needed; the access line names the backend).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { rawRequest } from "../support/http.js";
import { waitFor } from "../support/process.js";
import { startRedis } from "../support/redis-server.js";
import { startTestS3 } from "../support/s3-server.js";
import { tokenRecords } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";
import { startServe, type ServeProcess } from "../support/vault-process.js";

/** examples/ at the package root (this file runs as <outDir>/tests/integration/examples.test.js). */
const EXAMPLES = fileURLToPath(new URL("../../../examples/", import.meta.url));

/** What the comments of the default-backend examples promise. */
const DEFAULTS = [
  ["pypi", "/pypi/"],
  ["npm", "/npm/"],
  ["docker", "/dockerhub/"],
  ["debian", "/debian/"],
] as const;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "examples-"));
  await cp(EXAMPLES, join(dir, "examples"), { recursive: true });
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Health, readiness, and each promised backend answering under its prefix. */
async function checkServes(vault: ServeProcess, backends: ReadonlyArray<readonly [string, string]>, options: { registryApi?: boolean } = {}): Promise<void> {
  const health = await rawRequest(vault.url, "/health");
  assert.equal(health.status, 200);
  assert.equal(health.json<{ status: string }>().status, "healthy");
  await waitFor("/ready to say ready", async () => ((await rawRequest(vault.url, "/ready")).status === 200 ? true : undefined));
  const listening = vault.logLines().find((line) => line["msg"] === "artifact-vault listening");
  assert.deepEqual(
    (listening?.["backends"] as string[]).map((described) => described.split(" ").slice(0, 2).join(" ")),
    backends.map(([name, prefix]) => `${name} ${prefix}`),
  );
  // The line says where the vault's own pages are, and each answers there.
  const pages = listening?.["pages"] as Record<string, string>;
  assert.equal(pages["ui"], `${vault.url}/ui/`);
  for (const page of Object.values(pages)) {
    if (page.startsWith("http")) assert.equal((await rawRequest(vault.url, new URL(page).pathname)).status, 200, page);
  }
  for (const [name, prefix] of backends) {
    const id = `probe-${name}`;
    const answer = await rawRequest(vault.url, `${prefix}probe.txt`, { method: "DELETE", headers: { "x-request-id": id } });
    assert.equal(answer.status, 405, `${name}: ${answer.body.toString()}`);
    const line = await waitFor(`the access line of ${id}`, () => vault.logLines().find((entry) => entry["reqId"] === id && entry["msg"] === "request"));
    assert.equal(line["backend"], name);
  }
  if (options.registryApi === true) {
    const v2 = await rawRequest(vault.url, "/v2/");
    assert.equal(v2.status, 200);
    assert.equal(v2.header("docker-distribution-api-version"), "registry/2.0");
  }
}

const cases: ReadonlyArray<{ file: string; backends: ReadonlyArray<readonly [string, string]>; registryApi?: boolean }> = [
  { file: "config/minimal.yml", backends: DEFAULTS, registryApi: true },
  { file: "config/cache-dir.yml", backends: DEFAULTS, registryApi: true },
  { file: "config/readme.yml", backends: DEFAULTS, registryApi: true },
  {
    file: "config/full.yml",
    backends: [["apache", "/apache/"], ["pypi", "/pypi/"], ["docker", "/dockerhub/"], ["npm", "/npm/"], ["debian", "/debian/"]],
    registryApi: true,
  },
  { file: "plugins/vault.yml", backends: [["releases", "/releases/"], ["legacy", "/legacy/"]] },
];

describe("examples/ start as they stand", () => {
  for (const { file, backends, registryApi } of cases) {
    test(file, async () => {
      const cwd = join(dir, "examples", file.split("/")[0] ?? "");
      const vault = await startServe(["--config", file.split("/")[1] ?? "", "--port", "0", "--host", "127.0.0.1"], { cwd });
      try {
        await checkServes(vault, backends, { registryApi });
      } finally {
        assert.equal(await vault.stop(), 0, vault.output());
      }
    });
  }

  for (const store of ["memory", "local"]) {
    test(`config/storage.yaml through STORAGE_CONFIG, STORAGE_NAME=${store}`, async () => {
      const cwd = join(dir, "examples", "config");
      const vault = await startServe(["--port", "0"], { cwd, env: { STORAGE_CONFIG: "storage.yaml", STORAGE_NAME: store } });
      try {
        const listening = vault.logLines().find((line) => line["msg"] === "artifact-vault listening");
        assert.equal(listening?.["storage"], store === "memory" ? "memory" : "filesystem");
        await checkServes(vault, DEFAULTS, { registryApi: true });
      } finally {
        assert.equal(await vault.stop(), 0, vault.output());
      }
    });
  }

  test("config/s3-replicas.yml, two replicas on one bucket and one Redis (the variables it reads)", async (t) => {
    if (requireTool(t, "redis-server") === undefined) return;
    const s3 = await startTestS3({ conditionalWrites: true });
    const redis = await startRedis();
    const replicas: ServeProcess[] = [];
    try {
      const store = s3.storeConfig();
      const { records, tokens } = await tokenRecords([{ name: "ci", scopes: ["read", "write"] }]);
      const tokensFile = join(dir, "replica-tokens.json");
      await writeTokensFile(tokensFile, records);
      const env = {
        S3_BUCKET: s3.bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_REGION: s3.region,
        S3_ACCESS_KEY: s3.accessKeyId,
        S3_SECRET_KEY: s3.secretAccessKey,
        S3_PREFIX: store.prefix,
        REDIS_URL: redis.url,
        AUTH_TOKENS_FILE: tokensFile,
      };
      const cwd = join(dir, "examples", "config");
      for (let i = 0; i < 2; i++) replicas.push(await startServe(["--config", "s3-replicas.yml", "--port", "0", "--host", "127.0.0.1"], { cwd, env }));
      const [first, second] = replicas as [ServeProcess, ServeProcess];
      for (const replica of replicas) {
        const health = (await rawRequest(replica.url, "/health")).json<{ status: string; coordination: { mode: string; redis: string } }>();
        assert.deepEqual([health.status, health.coordination.mode, health.coordination.redis], ["healthy", "redis", "up"]);
        await checkServes(replica, []);
      }
      // The object store it promises: a write on one replica is read on the other.
      const authorization = { authorization: `Bearer ${tokens["ci"] ?? ""}` };
      assert.equal((await rawRequest(first.url, "/objects/shared/a.txt", { method: "PUT", body: "from the first", headers: authorization })).status, 200);
      const read = await rawRequest(second.url, "/objects/shared/a.txt", { headers: authorization });
      assert.equal(read.status, 200);
      assert.equal(read.body.toString(), "from the first");
    } finally {
      for (const replica of replicas) await replica.stop();
      await redis.stop();
      await s3.close();
    }
  });
});
