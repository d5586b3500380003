/**
 * A Maven 2 layout repository as a map of files, built in memory (no network, no Maven): POMs
 * written here, jars given by the caller, checksum files computed here, `maven-metadata.xml` per
 * artifact. Served from memory by a scripted origin (integration tests) or written to a tree that
 * nginx serves (end to end).
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface Coordinates {
  readonly groupId: string;
  readonly artifactId: string;
  readonly version: string;
}

export interface Dependency extends Coordinates {
  readonly scope?: string;
}

export type ChecksumKind = "md5" | "sha1" | "sha256" | "sha512";

/** What Maven Central publishes beside every file. */
export const CENTRAL_CHECKSUMS: readonly ChecksumKind[] = ["md5", "sha1"];

export interface PublishOptions {
  readonly packaging?: string;
  readonly dependencies?: readonly Dependency[];
  /** The jar (absent: a POM-only artifact). */
  readonly jar?: Buffer;
  /** Checksum files published beside each file (default: `.md5` and `.sha1`, as Maven Central). */
  readonly checksums?: readonly ChecksumKind[];
}

/** `org/example/lib/1.0/lib-1.0.jar`: a file of a version, in the repository layout. */
export function mavenPath(coordinates: Coordinates, extension: string, classifier?: string): string {
  const { groupId, artifactId, version } = coordinates;
  return `${groupId.replaceAll(".", "/")}/${artifactId}/${version}/${artifactId}-${version}${classifier === undefined ? "" : `-${classifier}`}.${extension}`;
}

/** `org/example/lib/maven-metadata.xml`. */
export function metadataPath(groupId: string, artifactId: string): string {
  return `${groupId.replaceAll(".", "/")}/${artifactId}/maven-metadata.xml`;
}

export function checksumOf(body: Buffer, kind: ChecksumKind): string {
  return createHash(kind).update(body).digest("hex");
}

export function pomOf(coordinates: Coordinates, packaging: string, dependencies: readonly Dependency[]): string {
  const deps = dependencies
    .map((dep) => `    <dependency><groupId>${dep.groupId}</groupId><artifactId>${dep.artifactId}</artifactId><version>${dep.version}</version>${dep.scope === undefined ? "" : `<scope>${dep.scope}</scope>`}</dependency>\n`)
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>${coordinates.groupId}</groupId>
  <artifactId>${coordinates.artifactId}</artifactId>
  <version>${coordinates.version}</version>
  <packaging>${packaging}</packaging>
  <dependencies>
${deps}  </dependencies>
</project>
`;
}

export function metadataOf(groupId: string, artifactId: string, versions: readonly string[], lastUpdated: string): string {
  const latest = versions.at(-1) ?? "";
  return `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>${groupId}</groupId>
  <artifactId>${artifactId}</artifactId>
  <versioning>
    <latest>${latest}</latest>
    <release>${latest}</release>
    <versions>
${versions.map((version) => `      <version>${version}</version>\n`).join("")}    </versions>
    <lastUpdated>${lastUpdated}</lastUpdated>
  </versioning>
</metadata>
`;
}

export class StaticMavenRepository {
  /** Path (no leading `/`) → bytes. */
  readonly files = new Map<string, Buffer>();
  readonly #versions = new Map<string, string[]>();
  #updates = 0;

  /** Adds a file and its checksum files. */
  put(path: string, body: Buffer, checksums: readonly ChecksumKind[] = CENTRAL_CHECKSUMS): void {
    this.files.set(path, body);
    for (const kind of checksums) this.files.set(`${path}.${kind}`, Buffer.from(checksumOf(body, kind)));
  }

  /** Publishes a version: its POM, its jar, their checksums, and the artifact's `maven-metadata.xml`. */
  publish(coordinates: Coordinates, options: PublishOptions = {}): void {
    const checksums = options.checksums ?? CENTRAL_CHECKSUMS;
    const packaging = options.packaging ?? (options.jar === undefined ? "pom" : "jar");
    this.put(mavenPath(coordinates, "pom"), Buffer.from(pomOf(coordinates, packaging, options.dependencies ?? [])), checksums);
    if (options.jar !== undefined) this.put(mavenPath(coordinates, "jar"), options.jar, checksums);
    const key = `${coordinates.groupId}:${coordinates.artifactId}`;
    const versions = [...(this.#versions.get(key) ?? []), coordinates.version];
    this.#versions.set(key, versions);
    // Each update gets a later timestamp, as a repository manager writes them.
    const lastUpdated = `20260101${String(100000 + ++this.#updates).slice(1)}`;
    this.put(metadataPath(coordinates.groupId, coordinates.artifactId), Buffer.from(metadataOf(coordinates.groupId, coordinates.artifactId, versions, lastUpdated)));
  }

  /** Writes every file below `root`. */
  async writeTo(root: string, paths: Iterable<string> = this.files.keys()): Promise<void> {
    for (const path of paths) {
      const file = join(root, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, this.files.get(path) ?? Buffer.alloc(0));
    }
  }
}
