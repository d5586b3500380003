/**
 * `WWW-Authenticate` as registries send it (RFC 7235): `Bearer realm="https://auth.docker.io/token",
 * service="registry.docker.io",scope="repository:library/debian:pull"`. Only what the Docker
 * token flow needs: the scheme and its parameters.
 */
export interface Challenge {
  /** Lowercase: `bearer`, `basic`. */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** The first challenge in the header, or undefined when there is none. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  const rest = match[2] ?? "";
  // name=token or name="quoted \"string\"", comma-separated.
  const param = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/gy;
  let found: RegExpExecArray | null;
  while ((found = param.exec(rest)) !== null && found[0] !== "") {
    params[(found[1] ?? "").toLowerCase()] = found[2] === undefined ? (found[3] ?? "") : found[2].replace(/\\(.)/g, "$1");
  }
  return { scheme: (match[1] ?? "").toLowerCase(), params };
}
