/**
 * A Docker token authentication server (the flow Docker Hub's auth service implements), for a
 * `docker-registry` started with `auth: token` (see registry.ts) and for clients that follow
 * its `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge.
 *
 * - `GET /token?service=S&scope=repository:NAME:pull,push[&scope=…][&account=U]`, with or
 *   without `Authorization: Basic`, answers `{token, access_token, expires_in, issued_at}`.
 * - `POST /token` with a form `grant_type=password&username&password&service&scope` (the OAuth2
 *   form containerd tries first when it has credentials) answers the same JSON.
 * - Wrong credentials are a 401, as on Docker Hub. No credentials get the anonymous actions
 *   (none by default: a private registry); right ones get every action they asked for, unless
 *   `authorize` says otherwise. Either way the token only lists what was granted, and the
 *   registry answers 401 `insufficient_scope` for the rest.
 *
 * The JWT is ES256-signed by a P-256 key whose self-signed certificate (made with the `openssl`
 * CLI) is the registry's `rootcertbundle`. distribution 2.8 finds the key by the header's `kid`,
 * the libtrust key ID of a certificate in the bundle, or by an `x5c` chain that verifies up to one
 * of them; both are supported (`headerStyle`). libtrust wants ES256 signatures as raw r‖s
 * (JOSE), not DER: node's `dsaEncoding: "ieee-p1363"`.
 */
import { execFile } from "node:child_process";
import { createHash, generateKeyPairSync, randomUUID, sign, X509Certificate, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** One scope a client asked for: `repository:library/alpine:pull,push`. */
export interface Scope {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

/** One `access` entry of a token's claims. */
export interface Access {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

export interface TokenRequest {
  readonly method: string;
  readonly service: string | undefined;
  /** The raw `scope` values, in order. */
  readonly scopes: readonly string[];
  readonly account: string | undefined;
  /** The user name the client sent (Basic or form), if any. */
  readonly username: string | undefined;
  /** `none`: anonymous; `valid` / `invalid`: whether the password matched. */
  readonly credentials: "none" | "valid" | "invalid";
  readonly status: number;
  /** What the token grants (empty when no token was issued). */
  readonly granted: readonly Access[];
}

export type HeaderStyle = "kid" | "x5c";

export interface TokenServerOptions {
  /** Default `artifact-vault-test-registry`. */
  readonly service?: string;
  /** Default `artifact-vault-test-token-issuer`. */
  readonly issuer?: string;
  /** Accounts that may log in. Default: `{ tester: "s3cret-token-pass" }`. */
  readonly users?: Readonly<Record<string, string>>;
  /** Actions granted without credentials, for any repository. Default none. */
  readonly anonymousActions?: readonly string[];
  /** Overrides the default grant (anonymous: `anonymousActions`; a user: what it asked for). */
  readonly authorize?: (request: { readonly username: string | undefined; readonly scope: Scope }) => readonly string[];
  /** Lifetime in seconds. Default 300. */
  readonly expiresIn?: number;
  /** How the JWT names its key. Default `kid`. */
  readonly headerStyle?: HeaderStyle;
}

export interface MintOptions {
  readonly subject?: string;
  readonly access?: readonly Access[];
  readonly expiresIn?: number;
  /** Seconds added to now for `iat` and `nbf` (negative: issued in the past). */
  readonly issuedOffset?: number;
  readonly audience?: string;
  readonly issuer?: string;
  readonly headerStyle?: HeaderStyle;
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `URL/token`: the registry's `auth.token.realm`. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** The signing key's self-signed certificate (PEM): the registry's `rootcertbundle`. */
  readonly certificatePem: string;
  readonly certificateFile: string;
  /** The libtrust key ID distribution 2.8 looks the key up by. */
  readonly keyId: string;
  /** The first user of `users`, for clients that need credentials. */
  readonly credentials: Credentials;
  /** Every token request so far, in order. */
  requests(): readonly TokenRequest[];
  /** Token requests that asked for exactly this scope (among others). */
  requestsFor(scope: string): readonly TokenRequest[];
  /** Signs a token outside the HTTP flow (for expired, wrong-audience or x5c tokens). */
  mint(options?: MintOptions): string;
  stop(): Promise<void>;
}

// ------------------------------------------------------------------------------------------------

const base64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32, in 12
 * groups of 4 joined by ':' (`ABCD:EFGH:…`).
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  const encoded = base32(createHash("sha256").update(der).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)?.join(":") ?? encoded;
}

/** `repository:foo/bar:pull,push` → type, name, actions (names may contain ':' only before the actions). */
export function parseScope(raw: string): Scope | undefined {
  const first = raw.indexOf(":");
  const last = raw.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  return {
    type: raw.slice(0, first),
    name: raw.slice(first + 1, last),
    actions: raw
      .slice(last + 1)
      .split(",")
      .filter((action) => action !== ""),
  };
}

function parseBasic(header: string | undefined): Credentials | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A P-256 key (node:crypto) and its self-signed certificate (`openssl req -x509`), in `dir`. */
async function makeSigningIdentity(dir: string): Promise<{ key: KeyObject; certificate: X509Certificate; certificatePem: string; certificateFile: string }> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keyFile = join(dir, "token-signing-key.pem");
  const certificateFile = join(dir, "token-signing-cert.pem");
  await writeFile(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  await execFileAsync(
    "openssl",
    ["req", "-new", "-x509", "-sha256", "-key", keyFile, "-out", certificateFile, "-days", "2", "-subj", "/CN=artifact-vault test token issuer"],
    { timeout: 30_000 },
  );
  const certificatePem = await readFile(certificateFile, "utf8");
  const certificate = new X509Certificate(certificatePem);
  if (!certificate.checkPrivateKey(privateKey)) throw new Error("openssl made a certificate for another key");
  return { key: privateKey, certificate, certificatePem, certificateFile };
}

/** Starts the token server on a free 127.0.0.1 port; needs the `openssl` CLI. */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const service = options.service ?? "artifact-vault-test-registry";
  const issuer = options.issuer ?? "artifact-vault-test-token-issuer";
  const users = options.users ?? { tester: "s3cret-token-pass" };
  const [firstUser] = Object.entries(users);
  if (firstUser === undefined) throw new Error("the token server needs at least one user");
  const dir = await mkdtemp(join(tmpdir(), "vault-oci-token-"));
  try {
    return await serveTokens(dir, options, { service, issuer, users, firstUser });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function serveTokens(
  dir: string,
  options: TokenServerOptions,
  { service, issuer, users, firstUser }: { service: string; issuer: string; users: Readonly<Record<string, string>>; firstUser: [string, string] },
): Promise<TokenServer> {
  const expiresIn = options.expiresIn ?? 300;
  const identity = await makeSigningIdentity(dir);
  // As distribution computes it: from the public key of the certificate in its bundle.
  const keyId = libtrustKeyId(identity.certificate.publicKey);
  const log: TokenRequest[] = [];

  const mint = (mintOptions: MintOptions = {}): string => {
    const style = mintOptions.headerStyle ?? options.headerStyle ?? "kid";
    const header = style === "kid" ? { typ: "JWT", alg: "ES256", kid: keyId } : { typ: "JWT", alg: "ES256", x5c: [identity.certificate.raw.toString("base64")] };
    const now = Math.floor(Date.now() / 1000) + (mintOptions.issuedOffset ?? 0);
    const claims = {
      iss: mintOptions.issuer ?? issuer,
      sub: mintOptions.subject ?? "",
      aud: mintOptions.audience ?? service,
      exp: now + (mintOptions.expiresIn ?? expiresIn),
      nbf: now,
      iat: now,
      jti: randomUUID(),
      access: mintOptions.access ?? [],
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(signingInput), { key: identity.key, dsaEncoding: "ieee-p1363" });
    return `${signingInput}.${base64url(signature)}`;
  };

  const grant = (username: string | undefined, scope: Scope): string[] => {
    const allowed = options.authorize?.({ username, scope }) ?? (username === undefined ? (options.anonymousActions ?? []) : scope.actions);
    return scope.actions.filter((action) => allowed.includes(action) || allowed.includes("*"));
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://token.invalid");
    if (url.pathname !== "/token" || (request.method !== "GET" && request.method !== "POST")) {
      response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ details: "not found" }));
      return;
    }
    let params = url.searchParams;
    let given = parseBasic(request.headers.authorization);
    if (request.method === "POST") {
      params = new URLSearchParams(await readBody(request));
      const grantType = params.get("grant_type");
      if (grantType !== "password") {
        // No refresh tokens here: containerd then falls back to GET with Basic credentials.
        response.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "unsupported_grant_type" }));
        log.push({ method: "POST", service: params.get("service") ?? undefined, scopes: params.getAll("scope").flatMap((s) => s.split(" ")), account: undefined, username: undefined, credentials: "none", status: 400, granted: [] });
        return;
      }
      given = { username: params.get("username") ?? "", password: params.get("password") ?? "" };
    }
    // The OAuth2 form joins several scopes with spaces; the GET form repeats the parameter.
    const scopes = params.getAll("scope").flatMap((scope) => scope.split(" ")).filter((scope) => scope !== "");
    const credentials = given === undefined ? "none" : users[given.username] === given.password ? "valid" : "invalid";
    const entry = { method: request.method, service: params.get("service") ?? undefined, scopes, account: params.get("account") ?? undefined, username: given?.username, credentials } as const;
    if (credentials === "invalid") {
      log.push({ ...entry, status: 401, granted: [] });
      response.writeHead(401, { "content-type": "application/json", "www-authenticate": 'Basic realm="artifact-vault test token server"' });
      response.end(JSON.stringify({ details: "incorrect username or password" }));
      return;
    }
    const granted: Access[] = [];
    for (const raw of scopes) {
      const scope = parseScope(raw);
      if (scope === undefined) continue;
      const actions = grant(given?.username, scope);
      if (actions.length > 0) granted.push({ type: scope.type, name: scope.name, actions });
    }
    const token = mint({ subject: given?.username ?? "", access: granted });
    log.push({ ...entry, status: 200, granted });
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end(String(error));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certificatePem: identity.certificatePem,
    certificateFile: identity.certificateFile,
    keyId,
    credentials: { username: firstUser[0], password: firstUser[1] },
    requests: () => [...log],
    requestsFor: (scope) => log.filter((entry) => entry.scopes.includes(scope)),
    mint,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
