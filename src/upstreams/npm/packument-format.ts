import Negotiator from "negotiator";

/**
 * The two forms of a packument: the full document (`application/json`: what `npm install` and
 * `npm view` ask for) and the abbreviated one (`application/vnd.npm.install-v1+json`, "corgi":
 * pnpm, yarn, `npm outdated`). Each is fetched with exactly its type and cached on its own.
 */
export type PackumentFormat = "full" | "abbreviated";

export const ABBREVIATED_TYPE = "application/vnd.npm.install-v1+json";

/** What the client's `Accept` asks for. Anything but an explicit abbreviated preference is full, as on the public registry. */
export function negotiatePackumentFormat(accept: string | undefined): PackumentFormat {
  if (accept === undefined || !accept.includes(ABBREVIATED_TYPE)) return "full";
  const chosen = new Negotiator({ headers: { accept } }).mediaType([ABBREVIATED_TYPE, "application/json"]);
  return chosen === ABBREVIATED_TYPE ? "abbreviated" : "full";
}

/** The `Accept` sent upstream for a form; a registry without abbreviated documents answers the full one. */
export function upstreamAccept(format: PackumentFormat): string {
  return format === "abbreviated" ? `${ABBREVIATED_TYPE}; q=1.0, application/json; q=0.8` : "application/json";
}
