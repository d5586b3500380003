import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig, type LoadConfigOptions } from "./load-config.js";
import { defaultConfig, mainStore, type VaultConfig } from "./schema.js";

const GiB = 1024 ** 3;

/** examples/config at the repository root, from dist/src/config (built) or src/config. */
function examplesDir(): string {
  for (const relative of ["../../../examples/config/", "../../examples/config/"]) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new Error("examples/config not found");
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "load-config-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `yaml` to `<dir>/<name>` and loads it by its relative name, so messages start with `name`. */
async function load(yaml: string, options: Omit<LoadConfigOptions, "file" | "cwd"> = {}, name = "config.yml"): Promise<VaultConfig> {
  await writeFile(join(dir, name), yaml);
  return loadConfig({ file: name, cwd: dir, env: {}, ...options });
}

async function loadError(yaml: string, options: Omit<LoadConfigOptions, "file" | "cwd"> = {}): Promise<string> {
  try {
    await load(yaml, options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail("expected the config to be refused");
}

void describe("loadConfig: defaults", () => {
  void it("an empty file is the embedded default", async () => {
    const config = await load("");
    // Compared as data: each backend carries its factory, a new closure per load.
    const data = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
    assert.deepEqual(data(config), data(await loadConfig({ cwd: dir, env: {} })));
    assert.equal(config.http_host, "127.0.0.1");
    assert.equal(config.http_port, 8080);
    assert.equal(config.log_level, "info");
    assert.deepEqual(config.storage, { stores: { local: { type: "filesystem", config: { root_path: join(dir, "data") } } }, main: "local" });
    assert.deepEqual(config.auth, { tokens_file: join(dir, "tokens.json"), proxy: "anonymous" });
    assert.deepEqual(config.rate_limit, { enabled: true, per_token_per_minute: 1200, per_ip_per_minute: 1200 });
    assert.equal(config.max_object_size, 5 * GiB);
    assert.equal(config.shutdown_timeout_ms, 30_000);
    assert.deepEqual(config.cache, {
      max_size: undefined,
      metadata_ttl_ms: 600_000,
      negative_ttl_ms: 60_000,
      redirect_hits: false,
      redirect_min_size: 1024 * 1024,
      redirect_expiry_ms: 300_000,
    });
    // The public upstreams.
    assert.deepEqual(
      config.backends.map((backend) => [backend.type, backend.name, backend.options["prefix"]]),
      [
        ["pypi", "pypi", "/pypi/"],
        ["npm", "npm", "/npm/"],
        ["dockerhub", "docker", "/dockerhub/"],
        ["apt", "debian", "/debian/"],
      ],
    );
    // Defaults go through their type's schema like a written config: the factories need its defaults.
    const pypi = config.backends.find((backend) => backend.type === "pypi");
    assert.equal(pypi?.options["timeout"], 30);
    assert.equal(pypi?.options["packages_url"], "https://files.pythonhosted.org/packages");
  });

  void it("a comment-only file and null sections are defaults too", async () => {
    const config = await load("# nothing here\ncache:\nauth:\n");
    assert.equal(config.cache.metadata_ttl_ms, 600_000);
    assert.equal(config.auth.proxy, "anonymous");
  });

  void it("defaultConfig() matches, with relative paths left as written", () => {
    const config = defaultConfig();
    assert.equal(mainStore(config).type, "filesystem");
    assert.equal(config.auth.tokens_file, "./tokens.json");
  });
});

void describe("loadConfig: values", () => {
  void it("parses sizes and durations once", async () => {
    const config = await load(
      "max_object_size: 512MB\nshutdown_timeout: 250ms\ncache: {max_size: 100GiB, metadata_ttl: 1h, negative_ttl: 30}\n",
    );
    assert.equal(config.max_object_size, 512_000_000);
    assert.equal(config.shutdown_timeout_ms, 250);
    assert.deepEqual(config.cache, {
      max_size: 100 * GiB,
      metadata_ttl_ms: 3_600_000,
      negative_ttl_ms: 30_000,
      redirect_hits: false,
      redirect_min_size: 1024 * 1024,
      redirect_expiry_ms: 300_000,
    });
  });

  void it("cache.redirect_hits with its size and expiry; an expiry S3 cannot sign is refused", async () => {
    const config = await load('cache: {redirect_hits: "${REDIRECT:-true}", redirect_min_size: 64KiB, redirect_expiry: 15m}\n');
    assert.deepEqual(
      [config.cache.redirect_hits, config.cache.redirect_min_size, config.cache.redirect_expiry_ms],
      [true, 64 * 1024, 900_000],
    );
    assert.equal((await load("cache: {redirect_hits: on, redirect_min_size: 0, redirect_expiry: 7d}")).cache.redirect_expiry_ms, 7 * 86_400_000);
    assert.equal(await loadError("cache: {redirect_hits: sometimes}"), 'config.yml: cache.redirect_hits: expected true or false, got "sometimes"');
    assert.match(await loadError("cache: {redirect_min_size: lots}"), /^config\.yml: cache\.redirect_min_size: expected a size like/);
    for (const expiry of ["500ms", "8d", "1500ms", "0"]) {
      assert.match(await loadError(`cache: {redirect_expiry: ${expiry}}`), /^config\.yml: cache\.redirect_expiry: must be whole seconds from 1s to 7d \(S3's limits for a presigned URL\), got \d+ ms$/, expiry);
    }
    assert.match(await loadError("cache: {redirect_hit: true}"), /unknown key "redirect_hit" \(did you mean "redirect_hits"\?\)/);
  });

  void it("per_token_per_minute: 0 disables rate limiting", async () => {
    assert.equal((await load("rate_limit: {per_token_per_minute: 0}")).rate_limit.enabled, false);
    assert.equal((await load("rate_limit: {enabled: false}")).rate_limit.enabled, false);
  });

  void it("trust_proxy: off by default; a hop count, true, or proxy addresses and ranges", async () => {
    assert.equal((await load("")).trust_proxy, false);
    assert.equal((await load("trust_proxy: 1")).trust_proxy, 1);
    assert.equal((await load("trust_proxy: true")).trust_proxy, true);
    assert.deepEqual((await load("trust_proxy: [10.0.0.5, 172.16.0.0/12, loopback, '::1']")).trust_proxy, ["10.0.0.5", "172.16.0.0/12", "loopback", "::1"]);
    assert.equal((await load("trust_proxy: []")).trust_proxy, false);
  });

  void it("port 0 (ephemeral) is allowed", async () => {
    assert.equal((await load("http_port: 0")).http_port, 0);
  });

  void it("cache_dir is shorthand for one filesystem store, relative to the file", async () => {
    await mkdir(join(dir, "sub"), { recursive: true });
    await writeFile(join(dir, "sub", "vault.yml"), "cache_dir: ../cache\nauth: {tokens_file: secrets/tokens.json}\n");
    const config = await loadConfig({ file: "sub/vault.yml", cwd: dir, env: {} });
    assert.deepEqual(config.storage, { stores: { local: { type: "filesystem", config: { root_path: join(dir, "cache") } } }, main: "local" });
    assert.equal(config.auth.tokens_file, join(dir, "sub", "secrets", "tokens.json"));
  });

  void it("resolves the source design's storage type aliases and defaults main to the only store", async () => {
    const config = await load("storage: {stores: {mem: {type: AsyncDictStore}}}");
    assert.deepEqual(config.storage, { stores: { mem: { type: "memory", config: {} } }, main: "mem" });
    const s3 = await load(
      "storage: {stores: {b: {type: AsyncBucketStore, config: {bucket_name: art, endpoint_url: '', region: eu-west-1}}}}",
    );
    assert.deepEqual(mainStore(s3), { type: "s3", config: { bucket_name: "art", region: "eu-west-1" } });
  });

  void it("an explicit empty backends list means none", async () => {
    assert.deepEqual((await load("backends: []")).backends, []);
  });
});

void describe("loadConfig: ${VAR} substitution", () => {
  void it("replaces variables and defaults in string values", async () => {
    const config = await load(
      [
        "http_host: ${BIND}",
        "http_port: ${PORT_NUMBER:-9000}",
        "log_level: ${LEVEL:-warn}",
        "storage:",
        "  stores:",
        "    s3: {type: s3, config: {bucket_name: ${S3_BUCKET}, endpoint_url: ${S3_ENDPOINT}, prefix: 'a-${EMPTY-x}-$${LITERAL}'}}",
      ].join("\n"),
      { env: { BIND: "0.0.0.0", S3_BUCKET: "b", S3_ENDPOINT: "http://minio:9000", LEVEL: "", EMPTY: "" } },
    );
    assert.equal(config.http_host, "0.0.0.0");
    assert.equal(config.http_port, 9000);
    assert.equal(config.log_level, "warn");
    assert.deepEqual(mainStore(config), {
      type: "s3",
      config: { bucket_name: "b", endpoint_url: "http://minio:9000", prefix: "a--${LITERAL}" },
    });
  });

  void it("an unset variable without a default names the key path and the variable", async () => {
    const message = await loadError("storage:\n  stores:\n    s3: {type: s3, config: {bucket_name: \"${S3_BUCKET}\"}}\n");
    assert.match(message, /^config\.yml: storage\.stores\.s3\.config\.bucket_name: environment variable S3_BUCKET is not set/);
  });

  void it("refuses a malformed reference", async () => {
    assert.match(await loadError("http_host: ${not a name}"), /^config\.yml: http_host: bad variable reference \$\{not a name\}/);
  });
});

void describe("loadConfig: environment and flags", () => {
  const file = "http_host: 10.0.0.1\nhttp_port: 1111\nlog_level: debug\nstorage: {stores: {a: {type: memory}, b: {type: memory}}, main: a}\n";

  void it("env beats file, flags beat env", async () => {
    const env = { HOST: "10.0.0.2", PORT: "2222", LOG_LEVEL: "ERROR", STORAGE_NAME: "b", AUTH_TOKENS_FILE: "t/tokens.json" };
    const fromEnv = await load(file, { env });
    assert.equal(fromEnv.http_host, "10.0.0.2");
    assert.equal(fromEnv.http_port, 2222);
    assert.equal(fromEnv.log_level, "error");
    assert.equal(fromEnv.storage.main, "b");
    assert.equal(fromEnv.auth.tokens_file, join(dir, "t", "tokens.json"));
    const fromFlags = await load(file, { env, overrides: { host: "10.0.0.3", port: 3333 } });
    assert.equal(fromFlags.http_host, "10.0.0.3");
    assert.equal(fromFlags.http_port, 3333);
  });

  void it("empty environment variables are ignored", async () => {
    assert.equal((await load(file, { env: { PORT: "", HOST: " " } })).http_port, 1111);
  });

  void it("a bad override names the variable or flag", async () => {
    assert.equal(await loadError(file, { env: { PORT: "http" } }), 'environment variable PORT: http_port: expected a number from 0 to 65535, got "http"');
    assert.equal(await loadError(file, { overrides: { port: 70000 } }), "--port: http_port: expected a number from 0 to 65535, got 70000");
    assert.match(await loadError(file, { env: { STORAGE_NAME: "c" } }), /^environment variable STORAGE_NAME: storage\.main: no store named "c"/);
    assert.match(await loadError("cache_dir: x", { env: { STORAGE_NAME: "c" } }), /^environment variable STORAGE_NAME: storage\.main: no store named "c" \(stores: "local"\)/);
  });

  void it("STORAGE_CONFIG loads a storage.yaml with paths relative to it, and STORAGE_NAME picks the store", async () => {
    await mkdir(join(dir, "deploy"), { recursive: true });
    await writeFile(
      join(dir, "deploy", "storage.yaml"),
      "stores:\n  local: {type: AsyncFilesystemStore, config: {root_path: ./objects}}\n  mem: {type: AsyncDictStore}\n",
    );
    const config = await load("cache_dir: ./ignored\n", { env: { STORAGE_CONFIG: "deploy/storage.yaml", STORAGE_NAME: "local" } });
    assert.equal(config.storage.main, "local");
    assert.deepEqual(mainStore(config), { type: "filesystem", config: { root_path: join(dir, "deploy", "objects") } });
    assert.deepEqual(config.storage.stores["mem"], { type: "memory", config: {} });

    assert.match(
      await loadError("", { env: { STORAGE_CONFIG: "deploy/storage.yaml" } }),
      /^STORAGE_CONFIG deploy\/storage\.yaml: main: required when there are several stores/,
    );
    assert.match(
      await loadError("", { env: { STORAGE_CONFIG: "deploy/storage.yaml", STORAGE_NAME: "s3" } }),
      /^environment variable STORAGE_NAME: main: no store named "s3" \(stores: "local", "mem"\)/,
    );
    assert.match(await loadError("", { env: { STORAGE_CONFIG: "deploy/missing.yaml" } }), /^STORAGE_CONFIG deploy\/missing\.yaml: cannot read: no such file/);
  });
});

void describe("loadConfig: errors name the file, the key path and why", () => {
  const cases: Array<[string, string, string | RegExp]> = [
    ["an unknown top-level key", "http_prot: 8080", 'config.yml: unknown key "http_prot" (did you mean "http_port"?)'],
    ["a bad number", "rate_limit:\n  per_token_per_minute: lots\n", 'config.yml: rate_limit.per_token_per_minute: expected a number ≥ 0, got "lots"'],
    ["a negative number", "rate_limit: {per_ip_per_minute: -1}", "config.yml: rate_limit.per_ip_per_minute: expected a number ≥ 0, got -1"],
    ["a port out of range", "http_port: 65536", "config.yml: http_port: expected a number from 0 to 65535, got 65536"],
    ["an unknown log level", "log_level: loud", /^config\.yml: log_level: expected one of "fatal", "error", .*got "loud"$/],
    ["an unknown nested key", "cache: {max_sise: 1GiB}", 'config.yml: cache: unknown key "max_sise" (did you mean "max_size"?)'],
    ["a bad size", "cache: {max_size: huge}", /^config\.yml: cache\.max_size: expected a size like "512MB", "100GiB" or a number of bytes, got "huge"$/],
    ["a bad duration", "shutdown_timeout: soon", /^config\.yml: shutdown_timeout: expected a duration like "250ms", "30s", "10m", "1h" or a number of seconds, got "soon"$/],
    ["a zero max_object_size", "max_object_size: 0", "config.yml: max_object_size: must be greater than 0, got 0"],
    ["a bad proxy mode", "auth: {proxy: open}", 'config.yml: auth.proxy: expected one of "anonymous", "token", got "open"'],
    ["a trust_proxy entry that is no address", "trust_proxy: [10.0.0.1, proxy.example]", 'config.yml: trust_proxy[1]: expected a proxy\'s IP address, a CIDR range (10.0.0.0/8) or loopback, linklocal or uniquelocal, got "proxy.example"'],
    ["a trust_proxy hop count of 0", "trust_proxy: 0", "config.yml: trust_proxy: expected false, true, a number of proxy hops from 1 to 64, or a list of proxy addresses and CIDR ranges, got 0"],
    ["cache_dir and storage", "cache_dir: ./a\nstorage: {stores: {m: {type: memory}}}", /^config\.yml: cache_dir: give either cache_dir .* or storage, not both$/],
    ["an unknown storage type", "storage: {stores: {x: {type: ftp}}}", /^config\.yml: storage\.stores\.x\.type: unknown storage type "ftp" \(expected memory, filesystem, s3, AsyncDictStore/],
    ["a filesystem store without root_path", "storage: {stores: {x: {type: filesystem, config: {}}}}", "config.yml: storage.stores.x.config.root_path: missing: expected a string"],
    ["an s3 store without bucket", "storage: {stores: {x: {type: s3, config: {region: r}}}}", "config.yml: storage.stores.x.config.bucket_name: missing: expected a string"],
    ["an unknown store option", "storage: {stores: {x: {type: memory, config: {size: 1}}}}", 'config.yml: storage.stores.x.config: unknown key "size"'],
    ["a main naming no store", "storage: {stores: {a: {type: memory}}, main: b}", 'config.yml: storage.main: no store named "b" (stores: "a")'],
    ["no main among several", "storage: {stores: {a: {type: memory}, b: {type: memory}}}", 'config.yml: storage.main: required when there are several stores: name one of "a", "b"'],
    ["no stores", "storage: {stores: {}}", "config.yml: storage.stores: must name at least one store"],
    [
      "a prefix without slashes",
      "backends:\n  - {type: http, name: a, config: {prefix: /a/, base_url: 'http://a.example'}}\n  - {type: http, name: b, config: {prefix: /b/, base_url: 'http://b.example'}}\n  - {type: http, name: c, config: {prefix: c, base_url: 'http://c.example'}}\n",
      'config.yml: backends[2].config.prefix: must start and end with "/", got "c"',
    ],
    ["a backend without a prefix", "backends: [{type: http, name: a}]", 'config.yml: backends[0].config.prefix: missing: expected a URL prefix like "/pypi/"'],
    ["a reserved prefix", "backends: [{type: http, name: a, config: {prefix: /objects/}}]", /^config\.yml: backends\[0\]\.config\.prefix: "\/objects\/" is reserved/],
    ["a duplicate backend name", "backends: [{type: http, name: a, config: {prefix: /a/, base_url: 'http://a.example'}}, {type: npm, name: a, config: {prefix: /b/}}]", 'config.yml: backends[1].name: duplicate backend name "a" (also backends[0])'],
    ["a duplicate prefix", "backends: [{type: http, name: a, config: {prefix: /a/, base_url: 'http://a.example'}}, {type: npm, name: b, config: {prefix: /a/}}]", 'config.yml: backends[1].config.prefix: duplicate prefix "/a/" (also backends[0])'],
    ["an unknown backend type", "backends: [{type: ftp, name: a, config: {prefix: /a/}}]", /^config\.yml: backends\[0\]\.type: unknown backend type "ftp" \(known: http, /],
    ["a bad http base_url", "backends: [{type: http, name: a, config: {prefix: /a/, base_url: 'ftp://x'}}]", /^config\.yml: backends\[0\]\.config\.base_url: expected an http\(s\) URL, got "ftp:\/\/x"/],
    ["an unknown http option", "backends: [{type: http, name: a, config: {prefix: /a/, base_url: 'http://x', base_ulr: y}}]", /^config\.yml: backends\[0\]\.config: unknown key "base_ulr"/],
    ["an empty backend type", "backends: [{type: '', name: a, config: {prefix: /a/}}]", "config.yml: backends[0].type: must not be empty"],
    ["backends not a list", "backends: {pypi: {}}", "config.yml: backends: expected a list, got a mapping"],
    ["a document that is a list", "- a\n- b\n", "config.yml: expected a mapping of settings, got a list"],
    ["invalid YAML", "http_port: [1,\n", /^config\.yml: invalid YAML at line \d+, column \d+: /],
    ["a duplicate key", "http_port: 1\nhttp_port: 2\n", /^config\.yml: invalid YAML at line 2, column 1: Map keys must be unique/],
  ];
  for (const [what, yaml, expected] of cases) {
    void it(what, async () => {
      const message = await loadError(yaml);
      if (typeof expected === "string") assert.equal(message, expected);
      else assert.match(message, expected);
    });
  }

  void it("reports every problem, one per line", async () => {
    const message = await loadError("http_port: x\nlog_level: y\n");
    assert.equal(message.split("\n").length, 2);
  });

  void it("never echoes a secret value", async () => {
    const message = await loadError("storage: {stores: {s: {type: s3, config: {bucket_name: b, s3_secret_key: [hunter2]}}}}");
    assert.equal(message, "config.yml: storage.stores.s.config.s3_secret_key: expected a string, got a value of the wrong kind");
  });

  void it("a missing file", async () => {
    await assert.rejects(loadConfig({ file: "nope.yml", cwd: dir, env: {} }), { name: "ConfigError", message: "nope.yml: cannot read: no such file" });
  });
});

void describe("examples/config", () => {
  const env = { S3_BUCKET: "artifacts", S3_ENDPOINT: "http://127.0.0.1:9000", S3_ACCESS_KEY: "access", S3_SECRET_KEY: "secret" };

  void it("every example config loads", async () => {
    const examples = examplesDir();
    const files = (await readdir(examples)).filter((name) => name.endsWith(".yml")).sort();
    assert.ok(files.length >= 4, `expected example configs in ${examples}`);
    for (const name of files) {
      const config = await loadConfig({ file: join(examples, name), env }).catch((error: unknown) => {
        assert.fail(`${name}: ${error instanceof Error ? error.message : String(error)}`);
      });
      assert.ok(config.storage.stores[config.storage.main], name);
    }
  });

  void it("the SPEC §2 example (flow mappings with ${VAR}) loads with every section", async () => {
    const config = await loadConfig({ file: join(examplesDir(), "full.yml"), env });
    assert.deepEqual(config.storage.stores["s3"], {
      type: "s3",
      config: { bucket_name: "artifacts", endpoint_url: "http://127.0.0.1:9000", s3_access_key: "access", s3_secret_key: "secret" },
    });
    assert.equal(config.cache.max_size, 100 * GiB);
    assert.deepEqual(
      config.backends.map((backend) => backend.name),
      ["apache", "pypi", "docker", "npm", "debian"],
    );
    assert.equal(config.backends[0]?.options["timeout"], 30);
  });

  void it("the storage.yaml example loads through STORAGE_CONFIG", async () => {
    const storage = join(examplesDir(), "storage.yaml");
    for (const name of ["memory", "local", "s3"]) {
      const config = await loadConfig({ env: { STORAGE_CONFIG: storage, STORAGE_NAME: name } });
      assert.equal(config.storage.main, name);
    }
    const config = await loadConfig({ env: { STORAGE_CONFIG: storage } });
    assert.deepEqual(mainStore(config), { type: "filesystem", config: { root_path: join(examplesDir(), "data") } });
  });
});
