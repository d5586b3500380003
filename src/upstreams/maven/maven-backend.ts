import type { ArtifactRef, ExpectedDigest, Freshness } from "../../core/cache/artifact-ref.js";
import type { ResumeRequest, UpstreamAnswer, Validators } from "../../core/cache/artifact-source.js";
import { VaultError } from "../../core/errors.js";
import type { Backend, BackendContext, ProxyRequest } from "../backend.js";
import { createUpstreamClient } from "../http-client.js";
import { cacheKeyFor, fillRequestHeaders, readUpstreamBody, withTrailingSlash } from "../upstream-request.js";
import type { MavenBackendConfig } from "./maven-config.js";
import { CHECKSUM_EXTENSIONS, parseChecksumFile, parseMavenPath, VERIFYING_ALGORITHMS, type MavenFile } from "./maven-paths.js";

/**
 * The `maven` backend: a Maven 2 layout repository (Maven Central, Nexus, Artifactory, a file
 * tree behind a web server) for Maven's `<mirror>`, Gradle's `maven { url }`, and any client of
 * that layout.
 *
 *     {prefix}<group/as/dirs>/<artifactId>/<version>/<file>     a release file: immutable, verified
 *     {prefix}.../maven-metadata.xml, .../<v>-SNAPSHOT/...       mutable (ttl)
 *     {prefix}...<file>.sha1|.sha256|.sha512|.md5                 checksum files: as their file
 *
 * A release file is verified, while it streams, against the strongest checksum the repository
 * publishes beside it (`.sha512`, else `.sha256`, else `.sha1`): those are fetched through the
 * cache (they are what Maven asks for next anyway), and a file that does not match is never
 * cached or served whole. A release file with none of them is refused unless
 * `require_checksums: false` — except a `.asc` signature, which verifies itself. Mutable files
 * (metadata, snapshots) are not verified: a checksum fetched apart from its file may belong to
 * the file's previous or next state. Paths are checked (maven-paths.ts) before any upstream
 * request; an upstream 404 stays a 404, on which clients try their next repository. Nothing is
 * rewritten: Maven documents name no URLs. Errors are plain text.
 */

/** A checksum file is a line of hex; anything longer is not one. */
const MAX_CHECKSUM_BYTES = 4096;

export async function createMavenBackend(name: string, config: MavenBackendConfig, context: BackendContext): Promise<Backend> {
  const client = createUpstreamClient({
    baseUrl: withTrailingSlash(config.repository_url),
    username: config.username,
    password: config.password,
    timeoutSeconds: config.timeout,
    retries: config.retries,
  });
  const mutable: Freshness = { kind: "mutable", ttlMs: config.ttl ?? context.metadataTtlMs };
  const immutable: Freshness = { kind: "immutable" };
  const logger = context.logger.child({ backend: name });

  const freshnessOf = (file: MavenFile): Freshness => {
    const subject = file.kind === "checksum" ? file.of : file;
    return subject.kind === "release" ? immutable : mutable;
  };
  const refOf = (file: MavenFile): ArtifactRef => ({
    backend: name,
    cacheKey: cacheKeyFor(name, file.path),
    upstreamPath: file.path,
    upstream: file.kind,
    freshness: freshnessOf(file),
  });

  /**
   * The strongest digest the repository publishes for a release file, each checksum file read
   * through the cache (asked for together: one round trip); undefined when it publishes none.
   */
  const publishedDigest = async (path: string): Promise<ExpectedDigest | undefined> => {
    const found = await Promise.all(
      VERIFYING_ALGORITHMS.map(async (algorithm): Promise<ExpectedDigest | undefined> => {
        const checksumPath = `${path}${CHECKSUM_EXTENSIONS[algorithm]}`;
        let artifact;
        try {
          artifact = await context.artifacts.get(refOf(parseMavenPath(checksumPath)), fetch);
        } catch (error) {
          if (error instanceof VaultError && error.kind === "not_found") return undefined;
          throw error;
        }
        let bytes: Buffer;
        try {
          bytes = artifact.contents ?? (await readUpstreamBody(artifact.body(), MAX_CHECKSUM_BYTES, checksumPath));
        } finally {
          artifact.release();
        }
        const hex = parseChecksumFile(bytes.toString("latin1"), algorithm);
        if (hex === undefined) throw new VaultError("upstream_failed", `${checksumPath} holds no ${algorithm} checksum`);
        return { algorithm, hex };
      }),
    );
    return found.find((digest) => digest !== undefined);
  };

  const fetch = async (ref: ArtifactRef, validators: Validators | undefined, signal: AbortSignal, resume?: ResumeRequest): Promise<UpstreamAnswer> => {
    const headers = fillRequestHeaders(ref, validators, resume);
    if (ref.upstream !== "release") return client.request({ method: "GET", path: ref.upstreamPath, signal, headers });
    // The checksums are asked for alongside the file: a file the repository lacks stays a 404.
    const digest = publishedDigest(ref.upstreamPath);
    digest.catch(() => undefined);
    const response = await client.request({ method: "GET", path: ref.upstreamPath, signal, headers });
    if (response.status !== 200) return response;
    let expected: ExpectedDigest | undefined;
    try {
      expected = await digest;
      if (expected === undefined && config.require_checksums && !ref.upstreamPath.endsWith(".asc")) {
        throw new VaultError("upstream_failed", `the repository publishes no .sha512, .sha256 or .sha1 checksum for ${ref.upstreamPath}; it is not cached unverified (require_checksums)`);
      }
    } catch (error) {
      response.body.destroy();
      logger.warn({ key: ref.cacheKey, reason: (error as Error).message }, "cannot verify a release file against its published checksum; nothing cached");
      throw error;
    }
    if (expected === undefined) {
      logger.warn({ key: ref.cacheKey }, "the repository publishes no checksum for this file; it is cached unverified");
      return response;
    }
    // The cache checks the bytes against the digest as they stream, and stores nothing that fails.
    return { ...response, digest: expected };
  };

  return {
    type: "maven",
    name,
    prefix: config.prefix,
    resolve: (request: ProxyRequest): ArtifactRef => refOf(parseMavenPath(request.path)),
    fetch,
    close: () => client.close(),
  };
}

/** `type: maven`: a Maven 2 layout repository (Maven Central by default). */
