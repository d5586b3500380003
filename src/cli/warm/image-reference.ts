/**
 * Image references as container clients write them — `debian:12`, `library/debian`,
 * `ghcr.io/org/app@sha256:…`, `docker.io/library/debian:12@sha256:…` — and `--platform` values
 * (`linux/amd64`, `linux/arm64/v8`). Pure.
 *
 * A leading registry host (a first component with a `.` or a `:`, or `localhost`) is dropped:
 * the vault's OCI backend decides which registry an image comes from. A reference with neither
 * tag nor digest means `latest`; with both, the digest wins (as docker pulls it).
 */

export interface ImageReference {
  /** The repository below the registry: `library/debian`, `org/app`, `debian`. */
  readonly name: string;
  /** A tag or a `sha256:…` digest. */
  readonly reference: string;
}

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant: string | undefined;
}

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha(?:256:[a-f0-9]{64}|512:[a-f0-9]{128})$/;

/** Throws an Error saying what is wrong with the reference. */
export function parseImageReference(text: string): ImageReference {
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new Error(`not a sha256 or sha512 digest: ${digest}`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new Error(`not a valid tag: ${tag}`);
  }
  const components = rest.split("/");
  const first = components[0] ?? "";
  if (components.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) components.shift();
  if (components.length === 0 || !components.every((component) => COMPONENT.test(component))) {
    throw new Error(`not an image name: ${rest === "" ? JSON.stringify(text) : rest} (lower-case letters, digits and separators)`);
  }
  return { name: components.join("/"), reference: digest ?? tag ?? "latest" };
}

/** `os/architecture[/variant]`; throws an Error for anything else. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[A-Za-z0-9._-]+$/.test(part))) {
    throw new Error(`not a platform: ${JSON.stringify(text)} (expected os/architecture[/variant], e.g. linux/amd64)`);
  }
  return { os: parts[0] ?? "", architecture: parts[1] ?? "", variant: parts[2] };
}

/** Whether an index entry's platform is one of `wanted` (a wanted platform without a variant takes any). */
export function platformMatches(platform: { readonly os?: unknown; readonly architecture?: unknown; readonly variant?: unknown } | undefined, wanted: readonly Platform[]): boolean {
  if (platform === undefined) return false;
  return wanted.some(
    (want) => platform.os === want.os && platform.architecture === want.architecture && (want.variant === undefined || platform.variant === want.variant),
  );
}

export function formatPlatform(platform: Platform): string {
  return `${platform.os}/${platform.architecture}${platform.variant === undefined ? "" : `/${platform.variant}`}`;
}
