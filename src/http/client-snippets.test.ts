import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Backend, BackendMounts } from "../upstreams/backend.js";
import { clientSnippets, TOKEN_PLACEHOLDER, upstreamUrls, type ClientSnippet, type SnippetContext } from "./client-snippets.js";

function backend(type: string, name: string, prefix: string, mounts?: BackendMounts): Backend {
  return {
    type,
    name,
    prefix,
    mounts,
    resolve: () => {
      throw new Error("not used");
    },
    fetch: () => Promise.reject(new Error("not used")),
    close: async () => undefined,
  };
}

const ORIGIN = "http://vault.internal:8080";
const open: SnippetContext = { origin: ORIGIN, tokenRequired: false, registryBackends: 1 };
const withToken: SnippetContext = { ...open, tokenRequired: true };

const tools = (snippets: readonly ClientSnippet[]): string[] => snippets.map((snippet) => snippet.tool);
const text = (snippet: ClientSnippet | undefined): string => (snippet?.files ?? []).map((file) => file.text).join("\n");
const everything = (snippets: readonly ClientSnippet[]): string => JSON.stringify(snippets);

describe("client snippets", () => {
  it("pick the tools of each backend type", () => {
    const debian = backend("apt", "debian", "/debian/", { forwardProxy: [new URL("http://deb.debian.org/debian/")] });
    const table: ReadonlyArray<readonly [Backend, readonly string[]]> = [
      [backend("pypi", "pypi", "/pypi/"), ["pip", "uv"]],
      [backend("npm", "npm", "/npm/"), ["npm", "pnpm", "yarn"]],
      [backend("dockerhub", "docker", "/dockerhub/", { registryApi: true }), ["docker", "podman", "containerd"]],
      [debian, ["apt", "apt (proxy mode)"]],
      [backend("apt", "security", "/security/"), ["apt"]],
      [backend("go", "go", "/go/"), ["go"]],
      [backend("maven", "maven", "/maven/"), ["maven"]],
      [backend("rubygems", "rubygems", "/rubygems/"), ["gem", "bundler"]],
      [backend("huggingface", "hf", "/hf/"), ["huggingface_hub"]],
      [backend("cargo", "crates", "/cargo/"), ["cargo"]],
      [backend("http", "files", "/files/"), ["curl"]],
      [backend("custom", "plugin", "/plugin/"), ["curl"]],
      [backend("someday", "other", "/other/"), ["curl"]],
    ];
    for (const [made, expected] of table) assert.deepEqual(tools(clientSnippets(made, open)), expected, made.type);
  });

  it("point each client at the vault as the browser reached it, with the backend's prefix", () => {
    const [pip, uv] = clientSnippets(backend("pypi", "python", "/mirrors/python/"), open);
    assert.equal(text(pip), "[global]\nindex-url = http://vault.internal:8080/mirrors/python/simple/\ntrusted-host = vault.internal\n");
    assert.equal(pip?.files[0]?.path, "~/.config/pip/pip.conf");
    assert.equal(pip?.command, "npx artifact-vault setup pip --url http://vault.internal:8080 --prefix /mirrors/python/");
    assert.match(text(uv), /url = "http:\/\/vault\.internal:8080\/mirrors\/python\/simple\/"/);
    const [npm] = clientSnippets(backend("npm", "npm", "/npm/"), open);
    assert.equal(text(npm), "registry=http://vault.internal:8080/npm/\n");
    assert.equal(npm?.command, "npx artifact-vault setup npm --url http://vault.internal:8080", "the default prefix is left out");
    const [curl] = clientSnippets(backend("http", "files", "/files/"), open);
    assert.equal(text(curl), "curl -fLO http://vault.internal:8080/files/<path>\n");
    const [go] = clientSnippets(backend("go", "go", "/go/"), open);
    assert.equal(text(go), "GOPROXY=http://vault.internal:8080/go/\n");
    assert.equal(go?.files[0]?.path, "~/.config/go/env");
  });

  it("maven gets a mirror of every repository; with a token, a server entry for it", () => {
    const [open_] = clientSnippets(backend("maven", "maven", "/maven/"), open);
    assert.match(text(open_), /<mirrorOf>\*<\/mirrorOf>\n\s*<url>http:\/\/vault\.internal:8080\/maven\/<\/url>/);
    assert.doesNotMatch(text(open_), /<servers>/);
    const [secured] = clientSnippets(backend("maven", "maven", "/maven/"), withToken);
    assert.match(text(secured), /<server>\n\s*<id>artifact-vault<\/id>\n\s*<username>token<\/username>\n\s*<password><token><\/password>\n\s*<\/server>/);
    assert.equal(secured?.command, "npx artifact-vault setup maven --url http://vault.internal:8080 --token <token>");
  });

  it("gem gets the vault as its one source (with a token, as the URL's password); Bundler a mirror", () => {
    const [gem, bundler] = clientSnippets(backend("rubygems", "rubygems", "/rubygems/"), open);
    assert.equal(text(gem), "---\n:sources:\n- http://vault.internal:8080/rubygems/\n");
    assert.equal(text(bundler), '---\nBUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/: "http://vault.internal:8080/rubygems/"\n');
    assert.equal(bundler?.files[0]?.path, "~/.bundle/config");
    const [secured, securedBundler] = clientSnippets(backend("rubygems", "rubygems", "/rubygems/"), withToken);
    assert.match(text(secured), /- http:\/\/x:<token>@vault\.internal:8080\/rubygems\//);
    assert.match(text(securedBundler), /^BUNDLE_HTTP:\/\/VAULT__INTERNAL:8080\/RUBYGEMS\/: "x:<token>"$/m);
  });

  it("huggingface_hub gets HF_ENDPOINT without a trailing slash", () => {
    const [hub] = clientSnippets(backend("huggingface", "hf", "/hf/"), open);
    assert.equal(text(hub), "export HF_ENDPOINT=http://vault.internal:8080/hf\n");
    assert.equal(hub?.command, "npx artifact-vault setup hf --url http://vault.internal:8080");
    assert.ok(hub?.notes.some((note) => note === '@huggingface/hub does not read HF_ENDPOINT: give it hubUrl: "http://vault.internal:8080/hf"'));
    const [secured] = clientSnippets(backend("huggingface", "hf", "/hf/"), withToken);
    assert.equal(text(secured), "export HF_ENDPOINT=http://vault.internal:8080/hf\nexport HF_TOKEN='<token>'\n");
  });

  it("cargo replaces crates.io with the vault: a source, or with a token a registry whose token is not in the file", () => {
    const [open_] = clientSnippets(backend("cargo", "crates", "/cargo/"), open);
    assert.match(text(open_), /\[source\.vault\]\nregistry = "sparse\+http:\/\/vault\.internal:8080\/cargo\/"/);
    const [secured] = clientSnippets(backend("cargo", "crates", "/cargo/"), withToken);
    assert.match(text(secured), /\[registries\.vault\]\nindex = "sparse\+http:\/\/vault\.internal:8080\/cargo\/"/);
    assert.ok(secured?.notes.some((note) => note.includes("CARGO_REGISTRIES_VAULT_TOKEN")));
  });

  it("the go command gets its token only over https, and the snippet says so", () => {
    const [go] = clientSnippets(backend("go", "go", "/go/"), withToken);
    assert.equal(text(go), "GOPROXY=https://x:<token>@vault.internal:8080/go/\n");
    assert.ok(go?.notes.some((note) => note.startsWith("the go command sends a token only over https: put TLS in front of the vault")));
    assert.equal(go?.command, "npx artifact-vault setup go --url https://vault.internal:8080 --token <token>");
  });

  it("container clients use /v2/ with one registry, /v2/<name>/ with several (where docker cannot follow)", () => {
    const hub = backend("dockerhub", "hub", "/hub/", { registryApi: true });
    const [docker, podman, containerd] = clientSnippets(hub, open);
    assert.match(text(docker), /"registry-mirrors": \["http:\/\/vault\.internal:8080"\]/);
    assert.match(text(podman), /location = "vault\.internal:8080"\n/);
    assert.match(text(containerd), /\[host\."http:\/\/vault\.internal:8080"\]/);
    const several = clientSnippets(hub, { ...open, registryBackends: 2 });
    assert.equal(several[0]?.files.length, 0);
    assert.match(several[0]?.unavailable ?? "", /cannot name a path/);
    assert.match(text(several[1]), /location = "vault\.internal:8080\/hub"/);
    assert.match(text(several[2]), /\[host\."http:\/\/vault\.internal:8080\/v2\/hub"\]/);
  });

  it("apt gets a source for the backend's prefix and, when it answers them, proxy-mode lines for its mirror's host", () => {
    const debian = backend("apt", "debian", "/debian/", { forwardProxy: [new URL("http://deb.debian.org/debian/")] });
    const [mirror, proxy] = clientSnippets(debian, open);
    assert.match(text(mirror), /URIs: http:\/\/vault\.internal:8080\/debian\nSuites: <codename>\n/);
    assert.match(text(mirror), /Signed-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg/);
    assert.equal(text(proxy), 'Acquire::http::Proxy::deb.debian.org "http://vault.internal:8080/";\n');
    assert.match(proxy?.command ?? "", /--proxy-host deb\.debian\.org$/);
  });

  it("say <token> wherever a token goes, and never carry one", () => {
    const all = [
      backend("pypi", "pypi", "/pypi/"),
      backend("npm", "npm", "/npm/"),
      backend("dockerhub", "docker", "/dockerhub/", { registryApi: true }),
      backend("apt", "debian", "/debian/", { forwardProxy: [new URL("http://deb.debian.org/debian/")] }),
      backend("http", "files", "/files/"),
    ].flatMap((made) => clientSnippets(made, withToken));
    assert.doesNotMatch(everything(all), /STAND-IN|AVT-UI/);
    const byTool = new Map(all.map((snippet) => [snippet.tool, snippet]));
    assert.match(text(byTool.get("pip")), /index-url = http:\/\/__token__:<token>@vault\.internal:8080\/pypi\/simple\//);
    assert.match(text(byTool.get("npm")), /\/\/vault\.internal:8080\/npm\/:_authToken=<token>/);
    assert.match(text(byTool.get("apt")), /password <token>/);
    assert.match(text(byTool.get("apt (proxy mode)")), /"http:\/\/x:<token>@vault\.internal:8080\/"/);
    assert.match(text(byTool.get("curl")), /-H "Authorization: Bearer <token>"/);
    // Container logins hold the token base64-encoded: the settings without it, and the command puts it in.
    const containerd = byTool.get("containerd");
    assert.doesNotMatch(text(containerd), /authorization/);
    assert.match(containerd?.notes.join("\n") ?? "", /encoded form/);
    assert.equal(byTool.get("podman")?.files.length, 1, "the mirror, without the auth.json login");
    for (const snippet of all) {
      if (snippet.command !== null && snippet.command !== undefined) assert.match(snippet.command, new RegExp(`--token ${TOKEN_PLACEHOLDER}`));
    }
  });
});

describe("upstream URLs", () => {
  it("are every *_url option, nested ones included, without userinfo or credential-looking query values", () => {
    const options = {
      prefix: "/pypi/",
      index_url: "https://alice:s3cr3t@pypi.internal/simple",
      packages_url: "https://files.internal/packages?token=abc&x=1",
      username: "bob",
      password: "https://not-a-url-option.example/hunter2",
      upstreams: [
        { registry_url: "https://registry-1.docker.io", auth_url: "https://auth.docker.io", username: "u", password: "p" },
        { registry_url: "https://user:pw@ghcr.io" },
      ],
      token: "npm_secret",
      timeout: 30,
    };
    const urls = upstreamUrls(options);
    assert.deepEqual(urls, [
      { option: "index_url", url: "https://pypi.internal/simple" },
      { option: "packages_url", url: "https://files.internal/packages?token=[redacted]&x=1" },
      { option: "upstreams[0].registry_url", url: "https://registry-1.docker.io/" },
      { option: "upstreams[0].auth_url", url: "https://auth.docker.io/" },
      { option: "upstreams[1].registry_url", url: "https://ghcr.io/" },
    ]);
    assert.doesNotMatch(JSON.stringify(urls), /s3cr3t|alice|abc|hunter2|npm_secret|pw@/);
  });
});
