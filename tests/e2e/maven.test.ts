/**
 * End to end with real parts: Debian's `mvn`, isolated (its own HOME and empty local repository,
 * a settings.xml whose one mirror, `<mirrorOf>*</mirrorOf>`, is the vault), resolves a project's
 * dependencies through the vault's `maven` backend from a Maven repository that nginx serves as
 * static files. The repository is built here, offline: POMs, checksums and `maven-metadata.xml`
 * by tests/support/maven/maven-repository.ts, jars with `javac` and `jar`. Maven Central is not
 * reachable, and every Maven goal is a plugin from it, so the repository also publishes a
 * plugin of its own (tests/support/maven/maven-tool.ts): its goal makes Maven resolve the
 * project's runtime dependencies — transitively, with a version range read from
 * `maven-metadata.xml`, and their checksums — then runs a class from them. What nginx logged is
 * what reached the upstream.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { mavenPath, metadataPath, StaticMavenRepository, type Coordinates } from "../support/maven/maven-repository.js";
import { javaJar, mavenEnvironment, missingMavenParts, publishVaultPlugin, runMain, writeProject, type MvnResult } from "../support/maven/maven-tool.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { startTestVault, type TestVault } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";

/** `maven-metadata.xml` stays fresh this long in the second vault; long enough for a step, short enough to wait out. */
const SHORT_TTL_MS = 4000;

const GREETING_1_0: Coordinates = { groupId: "example.test", artifactId: "greeting", version: "1.0" };
const GREETING_1_1: Coordinates = { ...GREETING_1_0, version: "1.1" };
const SHOUT: Coordinates = { groupId: "example.test", artifactId: "shout", version: "1.0" };
const BRITTLE: Coordinates = { groupId: "example.test", artifactId: "brittle", version: "1.0" };

const greetingSource = (version: string): Record<string, string> => ({
  "example/test/greeting/Greeting.java": `package example.test.greeting;\n\npublic final class Greeting {\n  public static String hello() { return "hello from ${version}"; }\n}\n`,
});
const SHOUT_SOURCE = {
  "example/test/shout/Shout.java":
    'package example.test.shout;\n\nimport example.test.greeting.Greeting;\n\npublic final class Shout {\n  public static void main(String[] args) {\n    System.out.println("shout says " + Greeting.hello().toUpperCase() + "!");\n  }\n}\n',
};
const brittleSource = (word: string): Record<string, string> => ({
  "example/test/brittle/Brittle.java": `package example.test.brittle;\n\npublic final class Brittle {\n  public static void main(String[] args) { System.out.println("brittle is ${word}"); }\n}\n`,
});

function assertMvnOk(result: MvnResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.output}`);
}

test("maven backend end to end: mvn → artifact-vault → nginx-served Maven repository", async (t: TestContext) => {
  for (const tool of ["nginx", "mvn", "javac", "jar"]) if (requireTool(t, tool) === undefined) return;
  const missing = missingMavenParts();
  if (missing !== undefined) {
    t.skip(`Debian's maven is not complete here: no ${missing}`);
    return;
  }

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-maven-"));
  let nginx: Nginx | undefined;
  const vaults: TestVault[] = [];
  try {
    // --- the upstream: a Maven repository, as static files
    const root = join(dir, "upstream");
    const work = join(dir, "work");
    const repository = new StaticMavenRepository();
    const greeting10 = await javaJar(work, "greeting-1.0", greetingSource("1.0"));
    const greeting11 = await javaJar(work, "greeting-1.1", greetingSource("1.1"));
    // greeting publishes SHA-512 as well, which the vault then verifies against.
    repository.publish(GREETING_1_0, { jar: greeting10, checksums: ["md5", "sha1", "sha512"] });
    // shout takes the newest greeting 1.x: Maven reads greeting's maven-metadata.xml for it.
    repository.publish(SHOUT, { jar: await javaJar(work, "shout", SHOUT_SOURCE, { classpath: [join(work, "java", "greeting-1.0", "greeting-1.0.jar")] }), dependencies: [{ ...GREETING_1_0, version: "[1.0,2.0)" }] });
    const brittleGood = await javaJar(work, "brittle-good", brittleSource("intact"));
    const brittleBad = await javaJar(work, "brittle-bad", brittleSource("replaced upstream"));
    repository.publish(BRITTLE, { jar: brittleGood });
    await publishVaultPlugin(work, repository);
    await repository.writeTo(root);

    nginx = await startNginx({ dir: join(dir, "nginx"), root });
    const upstream = nginx;

    const startVault = async (ttl: string): Promise<TestVault> => {
      const vault = await startTestVault({
        extraYaml: ["backends:", `  - {type: maven, name: maven, config: {prefix: /maven/, repository_url: "${upstream.url}/", ttl: ${ttl}, timeout: 10}}`].join("\n"),
      });
      vaults.push(vault);
      return vault;
    };
    const vault = await startVault("1h");

    let runs = 0;
    /** mvn with an empty local repository, through `through`, on a project that depends on `dependencies`. */
    const run = async (through: TestVault, dependency: Coordinates, mainClass: string, credentials?: { username: string; password: string }): Promise<{ result: MvnResult; localRepository: string }> => {
      const runDir = join(dir, `run-${++runs}`);
      const project = join(runDir, "app");
      await writeProject(project, [dependency]);
      const environment = await mavenEnvironment(runDir, `${through.url}/maven/`, credentials);
      return { result: await runMain(project, environment, mainClass), localRepository: environment.localRepository };
    };

    await t.test("mvn resolves a project's dependencies through the vault, and runs them", async () => {
      const { result, localRepository } = await run(vault, SHOUT, "example.test.shout.Shout");
      assertMvnOk(result, "mvn");
      assert.match(result.output, /shout says HELLO FROM 1\.0!/);
      // What Maven stored is byte for byte what the repository publishes.
      for (const path of [mavenPath(GREETING_1_0, "jar"), mavenPath(GREETING_1_0, "pom"), mavenPath(SHOUT, "jar"), mavenPath(SHOUT, "pom")]) {
        assert.deepEqual(await readFile(join(localRepository, path)), repository.files.get(path), path);
        assert.deepEqual(await readFile(join(localRepository, `${path}.sha1`)), repository.files.get(`${path}.sha1`), `${path}.sha1`);
      }
      const requests = upstream.requests();
      assert.ok(requests.some((entry) => entry.uri === `/${metadataPath("example.test", "greeting")}`), "the version range was resolved from maven-metadata.xml");
      assert.equal(upstream.requests(`/${mavenPath(GREETING_1_0, "jar")}.sha512`).length, 1, "greeting's jar was checked against its .sha512");
      assert.deepEqual(
        // (nginx's readiness probe asks for `/`.)
        requests.filter((entry) => entry.uri !== "/" && !entry.userAgent.startsWith("artifact-vault/")),
        [],
        "only the vault talks to the upstream",
      );
      for (const path of [mavenPath(GREETING_1_0, "jar"), mavenPath(SHOUT, "jar")]) {
        assert.equal(upstream.requests(`/${path}`).length, 1, `${path} was fetched once`);
      }
    });

    await t.test("a second run with an empty local repository makes no upstream request", async () => {
      const before = upstream.requests().length;
      const { result } = await run(vault, SHOUT, "example.test.shout.Shout");
      assertMvnOk(result, "mvn");
      assert.match(result.output, /shout says HELLO FROM 1\.0!/);
      assert.deepEqual(upstream.requests().slice(before), []);
    });

    await t.test("a jar that does not match its published checksum is refused and never cached", async () => {
      const jarPath = mavenPath(BRITTLE, "jar");
      // Another valid jar, which Maven itself would only warn about (its default checksum policy).
      await writeFile(join(root, jarPath), brittleBad);
      for (let attempt = 1; attempt <= 2; attempt++) {
        const before = upstream.requests(`/${jarPath}`).length;
        const { result, localRepository } = await run(vault, BRITTLE, "example.test.brittle.Brittle");
        assert.notEqual(result.code, 0, `attempt ${attempt}: mvn must fail:\n${result.output}`);
        assert.doesNotMatch(result.output, /brittle is replaced upstream/);
        await assert.rejects(readFile(join(localRepository, jarPath)), `attempt ${attempt}: the jar is not in the local repository`);
        assert.ok((await upstream.logged(`/${jarPath}`, before + 1)).length > before, `attempt ${attempt} went upstream again: nothing was cached`);
      }
      assert.ok(vault.logs().some((line) => typeof line["reason"] === "string" && line["reason"].includes("failed verification")), JSON.stringify(vault.logs()));
      await writeFile(join(root, jarPath), brittleGood);
      const { result } = await run(vault, BRITTLE, "example.test.brittle.Brittle");
      assertMvnOk(result, "mvn with the repaired jar");
      assert.match(result.output, /brittle is intact/);
      const cached = await fetch(`${vault.url}/maven/${jarPath}`, { method: "HEAD" });
      assert.equal(cached.headers.get("x-cache"), "HIT");
    });

    await t.test("auth.proxy: token: mvn sends the token as the mirror's password from settings.xml", async () => {
      const secured = await startTestVault({
        proxyAuth: "token",
        tokens: [{ name: "ci", scopes: ["read"] }],
        extraYaml: ["backends:", `  - {type: maven, name: maven, config: {prefix: /maven/, repository_url: "${upstream.url}/", timeout: 10}}`].join("\n"),
      });
      vaults.push(secured);
      const refused = await run(secured, SHOUT, "example.test.shout.Shout");
      assert.notEqual(refused.result.code, 0, refused.result.output);
      assert.match(refused.result.output, /401/);
      const { result } = await run(secured, SHOUT, "example.test.shout.Shout", { username: "ci", password: secured.tokens["ci"] ?? "" });
      assertMvnOk(result, "mvn with the token");
      assert.match(result.output, /shout says HELLO FROM 1\.0!/);
    });

    // A second vault with a short ttl, for freshness and outages.
    const shortVault = await startVault(`${SHORT_TTL_MS}ms`);
    const metadataUri = `/${metadataPath("example.test", "greeting")}`;

    await t.test("a version published upstream is invisible within the ttl and visible after it", async () => {
      const metadataUrl = `${shortVault.url}/maven${metadataUri}`;
      const first = await fetch(metadataUrl);
      assert.equal(first.headers.get("x-cache"), "MISS");
      assert.doesNotMatch(await first.text(), /<version>1\.1<\/version>/);
      const metadataBefore = upstream.requests(metadataUri).length;

      const published = new Set(repository.files.keys());
      repository.publish(GREETING_1_1, { jar: greeting11, checksums: ["md5", "sha1", "sha512"] });
      await repository.writeTo(root, [...repository.files.keys()].filter((path) => !published.has(path) || path.includes("maven-metadata.xml")));

      const cached = await fetch(metadataUrl);
      assert.equal(cached.headers.get("x-cache"), "HIT");
      assert.doesNotMatch(await cached.text(), /<version>1\.1<\/version>/);
      assert.equal(upstream.requests(metadataUri).length, metadataBefore, "no upstream request while fresh");

      await sleep(SHORT_TTL_MS + 300);
      const later = await run(shortVault, SHOUT, "example.test.shout.Shout");
      assertMvnOk(later.result, "mvn after the ttl");
      assert.match(later.result.output, /shout says HELLO FROM 1\.1!/);
      assert.deepEqual(await readFile(join(later.localRepository, mavenPath(GREETING_1_1, "jar"))), greeting11);
      const revalidation = (await upstream.logged(metadataUri, metadataBefore + 1)).at(-1);
      assert.notEqual(revalidation?.ifNoneMatch, "", "the metadata was revalidated with the upstream's ETag");
    });

    await t.test("with the upstream stopped, a fresh local repository still resolves from the vault", async () => {
      await upstream.stop();
      await sleep(SHORT_TTL_MS + 300); // the metadata is stale now: served STALE, not refetched
      const { result } = await run(shortVault, SHOUT, "example.test.shout.Shout");
      assertMvnOk(result, "mvn with the upstream stopped");
      assert.match(result.output, /shout says HELLO FROM 1\.1!/);
      const metadata = await fetch(`${shortVault.url}/maven${metadataUri}`);
      assert.equal(metadata.headers.get("x-cache"), "STALE");
      assert.match(await metadata.text(), /<version>1\.1<\/version>/);
    });
  } finally {
    await Promise.all(vaults.map((vault) => vault.close()));
    await nginx?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
