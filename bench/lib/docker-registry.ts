/**
 * Debian's `docker-registry` (CNCF distribution 2.8) for benchmarks, started from the run's temp
 * dir like nginx: filesystem storage there, a free 127.0.0.1 port, pinned with taskset (Go then
 * runs with GOMAXPROCS 1 on that core), always stopped. Either a plain registry (the upstream,
 * with an access log to count what reached it) or distribution's pull-through cache of another
 * registry (`proxy.remoteurl`), logging only warnings so it spends its core on serving.
 *
 * `pushBlob` / `pushManifest` upload with the registry API itself (monolithic upload: POST, then
 * one PUT with the digest), so a 256 MiB blob streams from a file and never needs skopeo.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAccessLog, type AccessLogEntry } from "../../tests/support/oci/registry.js";
import { freePort, waitForHttp } from "./environment.js";
import { runChecked, startServer, tail } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

export interface DockerRegistryOptions {
  /** A directory of its own, inside the run's temp dir. */
  readonly dir: string;
  readonly cpu: number | undefined;
  readonly name: string;
  /** Run as a pull-through cache of this registry (`http://127.0.0.1:PORT`). */
  readonly proxyOf?: string;
  /** Write an access log (Apache combined format, mixed into the server's log file). */
  readonly accessLog?: boolean;
}

export interface DockerRegistry extends SystemUnderTest {
  /** The storage root (`storage.filesystem.rootdirectory`). */
  readonly dataDir: string;
  /** Access-log entries so far (each is written when its request is done). */
  requests(): AccessLogEntry[];
  /** Whether the registry's storage holds the blob (a proxy stores what it fetched in the background). */
  hasBlob(digest: string): boolean;
}

/** The version `docker-registry --version` prints last, e.g. `2.8.2+ds1`. */
export async function dockerRegistryVersion(): Promise<string> {
  const out = await runChecked("docker-registry", ["--version"]);
  return out.trim().split(/\s+/).at(-1) ?? "?";
}

export async function startDockerRegistry(options: DockerRegistryOptions): Promise<DockerRegistry> {
  const { dir } = options;
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  // JSON is YAML. `log.level: warn` drops distribution's per-request "response completed" lines.
  const config = {
    version: "0.1",
    log: { level: "warn", formatter: "json", accesslog: { disabled: options.accessLog !== true } },
    storage: { filesystem: { rootdirectory: dataDir }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `127.0.0.1:${port}`, secret: "artifact-vault-bench" },
    health: { storagedriver: { enabled: false } },
    ...(options.proxyOf !== undefined ? { proxy: { remoteurl: options.proxyOf } } : {}),
  };
  const configFile = join(dir, "config.yml");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const logFile = join(dir, `${options.name.replace(/\W+/g, "-")}.log`);
  const server = startServer({ name: options.name, command: "docker-registry", args: ["serve", configFile], logFile, cpu: options.cpu, cwd: dir });
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/v2/`, {
    ready: (status) => status === 200,
    gaveUp: () => (server.exited() ? `${options.name} exited at start:\n${tail(logFile)}` : undefined),
  });
  return {
    name: options.name,
    baseUrl,
    headers: {},
    pids: [server.pid],
    logFile,
    dataDir,
    requests: () => {
      try {
        return parseAccessLog(readFileSync(logFile, "utf8"));
      } catch {
        return [];
      }
    },
    hasBlob: (digest) => {
      const hex = digest.replace(/^sha256:/, "");
      return existsSync(join(dataDir, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data"));
    },
    stop: () => server.stop(),
  };
}

/** Uploads `file` as the blob `digest` (`sha256:<hex>`) of `repository`, in one PUT streamed by curl. */
export async function pushBlob(registry: SystemUnderTest, repository: string, digest: string, file: string): Promise<void> {
  const started = await fetch(`${registry.baseUrl}/v2/${repository}/blobs/uploads/`, { method: "POST" });
  await started.arrayBuffer();
  const location = started.headers.get("location");
  if (started.status !== 202 || location === null) throw new Error(`${registry.name}: POST /v2/${repository}/blobs/uploads/ answered ${started.status}`);
  const url = new URL(location, registry.baseUrl);
  url.searchParams.set("digest", digest);
  // Content-Type matters: with curl's default (a form), distribution parses the body as one.
  await runChecked("curl", ["-sS", "--fail-with-body", "-H", "Expect:", "-H", "Content-Type: application/octet-stream", "-T", file, url.href]);
  const size = statSync(file).size;
  const check = await fetch(`${registry.baseUrl}/v2/${repository}/blobs/${digest}`, { method: "HEAD" });
  if (check.status !== 200 || Number(check.headers.get("content-length")) !== size) {
    throw new Error(`${registry.name}: blob ${digest} not there after the upload (HEAD ${check.status})`);
  }
}

/** PUTs a manifest under a tag. */
export async function pushManifest(registry: SystemUnderTest, repository: string, tag: string, mediaType: string, body: Buffer): Promise<void> {
  const response = await fetch(`${registry.baseUrl}/v2/${repository}/manifests/${tag}`, { method: "PUT", headers: { "content-type": mediaType }, body });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`${registry.name}: PUT /v2/${repository}/manifests/${tag} answered ${response.status}: ${text}`);
}
