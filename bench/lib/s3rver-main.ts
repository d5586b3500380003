/**
 * The S3 server of the benchmarks, as a process of its own: the tests' patched s3rver
 * (`tests/support/s3-server.ts`, conditional writes on) started here, so its CPU time is its own
 * (`/proc/<pid>/stat`) and not the harness's. Started by `startS3Server` (`s3.ts`):
 *
 *     node s3rver-main.js <ready-file>
 *
 * Once listening it writes `<ready-file>` (JSON: endpoint, bucket, credentials, and the URL of a
 * small stats server that answers `GET /stats` with the S3 requests it answered so far, by
 * method). SIGTERM closes it. Its data directory is made under `os.tmpdir()`: the harness points
 * `TMPDIR` into the run's temp dir, so even a SIGKILL leaves nothing behind.
 */
import { renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startTestS3 } from "../../tests/support/s3-server.js";

export interface S3ServerReady {
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly statsUrl: string;
}

export interface S3ServerStats {
  readonly requests: number;
  readonly byMethod: Readonly<Record<string, number>>;
}

async function main(): Promise<void> {
  const readyFile = process.argv[2];
  if (readyFile === undefined) throw new Error("usage: s3rver-main.js <ready-file>");
  // Always s3rver: never an external endpoint a developer's shell may name for the tests.
  for (const name of Object.keys(process.env)) if (name.startsWith("S3_TEST_")) delete process.env[name];
  const s3 = await startTestS3({ conditionalWrites: true });

  // The tests' server logs every request in an array; keep counts only, so a long run does not grow it.
  const byMethod: Record<string, number> = {};
  let total = 0;
  const drain = (): void => {
    for (const request of s3.requests.splice(0)) {
      byMethod[request.method] = (byMethod[request.method] ?? 0) + 1;
      total++;
    }
  };
  const timer = setInterval(drain, 250);
  const stats = createServer((request, response) => {
    drain();
    const body: S3ServerStats = { requests: total, byMethod };
    response.writeHead(request.url === "/stats" ? 200 : 404, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => stats.listen(0, "127.0.0.1", resolve));
  const statsPort = (stats.address() as AddressInfo).port;

  const ready: S3ServerReady = {
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    statsUrl: `http://127.0.0.1:${statsPort}/stats`,
  };
  writeFileSync(`${readyFile}.tmp`, JSON.stringify(ready));
  renameSync(`${readyFile}.tmp`, readyFile);

  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    clearInterval(timer);
    stats.close();
    stats.closeAllConnections();
    s3.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("s3rver: close failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", close);
  process.on("SIGINT", close);
}

main().catch((error: unknown) => {
  console.error("s3rver failed to start:", error);
  process.exit(1);
});
