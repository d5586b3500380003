/**
 * The real `mvn` for end-to-end tests, isolated: its own HOME and local repository, a
 * `settings.xml` whose only mirror (`<mirrorOf>*</mirrorOf>`) is the vault, batch mode. Also what
 * the test repository's jars are made with: `javac` and `jar` from the JDK, no Maven involved.
 *
 * Every Maven goal runs a plugin, and the usual ones (compiler, dependency, ...) come from
 * Maven Central, which tests cannot reach. So the test repository publishes its own plugin,
 * `example.test:vault-maven-plugin` (`VAULT_PLUGIN`), built here against the `maven-plugin-api`
 * Debian's maven ships, with a hand-written descriptor: its `run` goal needs the project's
 * runtime dependencies resolved (by Maven itself, through the mirror: POMs, transitive
 * dependencies, version ranges from `maven-metadata.xml`, checksums), then loads a class from
 * them and runs its `main`. Maven adds `plexus-utils` to every plugin that does not depend on
 * it, so the plugin depends on Debian's copy, published in the repository too.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { Coordinates, Dependency, StaticMavenRepository } from "./maven-repository.js";

const execFileAsync = promisify(execFile);

export const VAULT_PLUGIN: Coordinates = { groupId: "example.test", artifactId: "vault-maven-plugin", version: "1.0" };
const PLEXUS_UTILS: Coordinates = { groupId: "org.codehaus.plexus", artifactId: "plexus-utils", version: "3.4.2" };
const DEBIAN_PLEXUS_UTILS = "/usr/share/maven-repo/org/codehaus/plexus/plexus-utils/3.4.2/plexus-utils-3.4.2.jar";
const MAVEN_PLUGIN_API = "/usr/share/maven/lib/maven-plugin-api-3.x.jar";

/** What the tests need of Debian's maven beyond `mvn`, `javac` and `jar`; undefined when all is there. */
export function missingMavenParts(): string | undefined {
  return [DEBIAN_PLEXUS_UTILS, MAVEN_PLUGIN_API].find((file) => !existsSync(file));
}

export interface MvnResult {
  readonly code: number;
  readonly output: string;
}

/** Compiles Java sources (`path → text`) into a jar; `classpath` holds jars they need. */
export async function javaJar(work: string, name: string, sources: Readonly<Record<string, string>>, options: { classpath?: readonly string[]; resources?: Readonly<Record<string, string>> } = {}): Promise<Buffer> {
  const dir = join(work, "java", name);
  const classes = join(dir, "classes");
  await mkdir(classes, { recursive: true });
  const files: string[] = [];
  for (const [path, text] of Object.entries(sources)) {
    const file = join(dir, "src", path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
    files.push(file);
  }
  for (const [path, text] of Object.entries(options.resources ?? {})) {
    await mkdir(dirname(join(classes, path)), { recursive: true });
    await writeFile(join(classes, path), text);
  }
  const classpath = options.classpath === undefined || options.classpath.length === 0 ? [] : ["-cp", options.classpath.join(":")];
  await execFileAsync("javac", ["--release", "11", "-nowarn", "-d", classes, ...classpath, ...files]);
  const jarFile = join(dir, `${name}.jar`);
  await execFileAsync("jar", ["--create", "--file", jarFile, "-C", classes, "."]);
  return readFile(jarFile);
}

const RUN_MOJO = `package example.test.plugin;

import java.io.File;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.List;
import org.apache.maven.plugin.AbstractMojo;
import org.apache.maven.plugin.MojoExecutionException;

/** Runs the main class of the project's runtime classpath, which Maven resolved for it. */
public class RunMojo extends AbstractMojo {
  private List<String> classpath;
  private String mainClass;

  public void execute() throws MojoExecutionException {
    try {
      URL[] urls = new URL[classpath.size()];
      for (int i = 0; i < urls.length; i++) urls[i] = new File(classpath.get(i)).toURI().toURL();
      try (URLClassLoader loader = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader())) {
        loader.loadClass(mainClass).getMethod("main", String[].class).invoke(null, (Object) new String[0]);
      }
    } catch (Exception e) {
      throw new MojoExecutionException("cannot run " + mainClass, e);
    }
  }
}
`;

const PLUGIN_DESCRIPTOR = `<?xml version="1.0" encoding="UTF-8"?>
<plugin>
  <name>vault-maven-plugin</name>
  <groupId>${VAULT_PLUGIN.groupId}</groupId>
  <artifactId>${VAULT_PLUGIN.artifactId}</artifactId>
  <version>${VAULT_PLUGIN.version}</version>
  <goalPrefix>vault</goalPrefix>
  <isolatedRealm>false</isolatedRealm>
  <inheritedByDefault>true</inheritedByDefault>
  <mojos>
    <mojo>
      <goal>run</goal>
      <description>Runs a main class from the project's runtime dependencies.</description>
      <requiresDependencyResolution>runtime</requiresDependencyResolution>
      <requiresProject>true</requiresProject>
      <implementation>example.test.plugin.RunMojo</implementation>
      <language>java</language>
      <instantiationStrategy>per-lookup</instantiationStrategy>
      <executionStrategy>once-per-session</executionStrategy>
      <threadSafe>true</threadSafe>
      <parameters>
        <parameter><name>classpath</name><type>java.util.List</type><required>true</required><editable>false</editable><description>The runtime classpath.</description></parameter>
        <parameter><name>mainClass</name><type>java.lang.String</type><required>true</required><editable>true</editable><description>The class to run.</description></parameter>
      </parameters>
      <configuration>
        <classpath implementation="java.util.List" default-value="\${project.runtimeClasspathElements}"/>
        <mainClass implementation="java.lang.String">\${vault.main}</mainClass>
      </configuration>
    </mojo>
  </mojos>
  <dependencies/>
</plugin>
`;

/** Builds `VAULT_PLUGIN` and publishes it, with the plexus-utils Maven gives every plugin. */
export async function publishVaultPlugin(work: string, repository: StaticMavenRepository): Promise<void> {
  const jar = await javaJar(work, "vault-maven-plugin", { "example/test/plugin/RunMojo.java": RUN_MOJO }, { classpath: [MAVEN_PLUGIN_API], resources: { "META-INF/maven/plugin.xml": PLUGIN_DESCRIPTOR } });
  repository.publish(PLEXUS_UTILS, { jar: await readFile(DEBIAN_PLEXUS_UTILS) });
  repository.publish(VAULT_PLUGIN, { jar, packaging: "maven-plugin", dependencies: [PLEXUS_UTILS] });
}

/** A project whose runtime dependencies are `dependencies`, ready for `runMain`. */
export async function writeProject(dir: string, dependencies: readonly Dependency[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const deps = dependencies.map((dep) => `    <dependency><groupId>${dep.groupId}</groupId><artifactId>${dep.artifactId}</artifactId><version>${dep.version}</version></dependency>\n`).join("");
  await writeFile(
    join(dir, "pom.xml"),
    `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example.test</groupId>
  <artifactId>app</artifactId>
  <version>1.0</version>
  <dependencies>
${deps}  </dependencies>
</project>
`,
  );
}

/**
 * An isolated mvn below `dir` (created): HOME, a settings.xml mirroring everything to `mirrorUrl`
 * (with `credentials` for it, which Maven sends when the mirror answers a Basic challenge), an
 * empty local repository.
 */
export async function mavenEnvironment(dir: string, mirrorUrl: string, credentials?: { username: string; password: string }): Promise<{ settings: string; localRepository: string; home: string }> {
  const home = join(dir, "home");
  const localRepository = join(dir, "repository");
  await mkdir(home, { recursive: true });
  await mkdir(localRepository, { recursive: true });
  const settings = join(dir, "settings.xml");
  await writeFile(
    settings,
    `<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror>
      <id>vault</id>
      <mirrorOf>*</mirrorOf>
      <url>${mirrorUrl}</url>
    </mirror>
  </mirrors>
${
  credentials === undefined
    ? ""
    : `  <servers>
    <server>
      <id>vault</id>
      <username>${credentials.username}</username>
      <password>${credentials.password}</password>
    </server>
  </servers>
`
}</settings>
`,
  );
  return { settings, localRepository, home };
}

/** `mvn <VAULT_PLUGIN>:run -Dvault.main=<mainClass>` in `project`: resolves its dependencies through the mirror and runs the class. */
export async function runMain(project: string, environment: { settings: string; localRepository: string; home: string }, mainClass: string): Promise<MvnResult> {
  const goal = `${VAULT_PLUGIN.groupId}:${VAULT_PLUGIN.artifactId}:${VAULT_PLUGIN.version}:run`;
  const args = ["--batch-mode", "-s", environment.settings, `-Dmaven.repo.local=${environment.localRepository}`, `-Dvault.main=${mainClass}`, goal];
  const env: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: environment.home };
  if (process.env["JAVA_HOME"] !== undefined) env["JAVA_HOME"] = process.env["JAVA_HOME"];
  try {
    const { stdout, stderr } = await execFileAsync("mvn", args, { cwd: project, env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}
