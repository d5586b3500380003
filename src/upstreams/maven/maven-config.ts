import { z } from "zod";
import { boolean, duration, httpUrl, optionalText, text } from "../../core/config/scalars.js";
import { upstreamRequestFields } from "../upstream-request-fields.js";

export const MAVEN_CENTRAL_URL = "https://repo.maven.apache.org/maven2";

/** Options of the `maven` backend: one Maven 2 layout repository upstream. */
export const mavenBackendConfigSchema = z.strictObject({
  prefix: text,
  /** The upstream repository (Maven 2 layout): Maven Central, a Nexus/Artifactory repository, a file tree behind a web server... */
  repository_url: httpUrl.default(MAVEN_CENTRAL_URL),
  /** Basic auth to the repository. */
  username: optionalText,
  password: optionalText,
  /**
   * Whether a release file the repository publishes no SHA-512, SHA-256 or SHA-1 checksum for
   * is refused (502, the default) rather than cached unverified. Maven Central publishes a
   * `.sha1` for every file.
   */
  require_checksums: boolean.default(true),
  /** `timeout` and `retries`. */
  ...upstreamRequestFields,
  /** Freshness of `maven-metadata.xml`, `-SNAPSHOT` directories and other mutable files (default: `cache.metadata_ttl`). */
  ttl: duration().optional(),
});

export type MavenBackendConfig = z.output<typeof mavenBackendConfigSchema>;
