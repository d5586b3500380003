/**
 * skopeo as the client of the test registries: copies (push and pull) and inspects, over plain
 * HTTP to 127.0.0.1, with the machine's policy and login files left out of it
 * (`--insecure-policy`; explicit credentials or `--no-creds`).
 *
 * Not isolated: containers/image's blob-info cache (root: /var/lib/containers/cache), so a blob
 * it has seen in one repository of a registry may be cross-repository mounted
 * (`POST …/blobs/uploads/?mount=…&from=…`) instead of uploaded, exactly as for a user.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Credentials } from "./token-server.js";

const execFileAsync = promisify(execFile);

export interface SkopeoResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `skopeo --insecure-policy ARGS`; a failure's error message carries skopeo's stderr. */
export async function skopeo(args: readonly string[], options: { readonly timeoutMs?: number } = {}): Promise<SkopeoResult> {
  try {
    const { stdout, stderr } = await execFileAsync("skopeo", ["--insecure-policy", ...args], { timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr };
  } catch (error) {
    const failed = error as Error & { stderr?: string; code?: number | string };
    throw new Error(`skopeo ${args.join(" ")} failed (${String(failed.code)}): ${failed.stderr?.trim() ?? failed.message}`, { cause: error });
  }
}

const isDocker = (reference: string): boolean => reference.startsWith("docker://");

/** `--X-tls-verify=false` and `--X-creds` / `--X-no-creds` for a docker:// side; nothing for local transports. */
function sideArgs(side: "src" | "dest" | "", reference: string, credentials: Credentials | undefined): string[] {
  if (!isDocker(reference)) return [];
  const flag = (name: string): string => (side === "" ? `--${name}` : `--${side}-${name}`);
  return [`${flag("tls-verify")}=false`, ...(credentials === undefined ? [flag("no-creds")] : [flag("creds"), `${credentials.username}:${credentials.password}`])];
}

export interface CopyOptions {
  readonly sourceCredentials?: Credentials;
  readonly destinationCredentials?: Credentials;
  /** `--all`: every image of an index or list. Default true. */
  readonly all?: boolean;
  /** `--preserve-digests`: fail rather than convert a manifest. Default true. */
  readonly preserveDigests?: boolean;
  readonly extraArgs?: readonly string[];
  readonly timeoutMs?: number;
}

/** `skopeo copy SOURCE DESTINATION` (e.g. `oci:DIR:TAG` → `docker://HOST/REPO:TAG`). */
export async function skopeoCopy(source: string, destination: string, options: CopyOptions = {}): Promise<SkopeoResult> {
  return skopeo(
    [
      "copy",
      "--retry-times=0",
      ...(options.all === false ? [] : ["--all"]),
      ...(options.preserveDigests === false ? [] : ["--preserve-digests"]),
      ...sideArgs("src", source, options.sourceCredentials),
      ...sideArgs("dest", destination, options.destinationCredentials),
      ...(options.extraArgs ?? []),
      source,
      destination,
    ],
    { timeoutMs: options.timeoutMs },
  );
}

export interface InspectOptions {
  readonly credentials?: Credentials;
  readonly timeoutMs?: number;
}

/** What `skopeo inspect` prints (the fields tests use). */
export interface InspectResult {
  /** The digest of the manifest (or of the index / list) the reference names. */
  readonly Digest: string;
  readonly Architecture: string;
  readonly Os: string;
  readonly Layers: readonly string[];
  readonly Labels: Readonly<Record<string, string>> | null;
}

/** `skopeo inspect REF`: for an index, the image for this machine's platform, but the index's `Digest`. */
export async function skopeoInspect(reference: string, options: InspectOptions = {}): Promise<InspectResult> {
  const { stdout } = await skopeo(["inspect", "--retry-times=0", ...sideArgs("", reference, options.credentials), reference], { timeoutMs: options.timeoutMs });
  return JSON.parse(stdout) as InspectResult;
}

/** `skopeo inspect --raw REF`: the manifest, index or list exactly as served. */
export async function skopeoInspectRaw(reference: string, options: InspectOptions = {}): Promise<Buffer> {
  const { stdout } = await skopeo(["inspect", "--raw", "--retry-times=0", ...sideArgs("", reference, options.credentials), reference], { timeoutMs: options.timeoutMs });
  return Buffer.from(stdout, "utf8");
}
