import Negotiator from "negotiator";

/**
 * The two serialisations of the simple API: PEP 503 HTML and PEP 691 JSON. A client picks one
 * with `Accept`, as on PyPI; each is fetched, rewritten and cached on its own.
 */
export type SimpleFormat = "html" | "json";

export const SIMPLE_JSON = "application/vnd.pypi.simple.v1+json";
export const SIMPLE_HTML = "application/vnd.pypi.simple.v1+html";

/**
 * What we may answer, in our order of preference for ties and wildcards: PyPI answers `*\/*` and
 * a missing `Accept` with HTML (what browsers and old clients expect), and JSON only to clients
 * that ask for it — pip ≥ 22.2 sends `application/vnd.pypi.simple.v1+json` first.
 */
const OFFERS: ReadonlyArray<readonly [string, SimpleFormat]> = [
  ["text/html", "html"],
  [SIMPLE_HTML, "html"],
  ["application/vnd.pypi.simple.latest+html", "html"],
  [SIMPLE_JSON, "json"],
  ["application/vnd.pypi.simple.latest+json", "json"],
];

/** The format to answer for a request's `Accept`; undefined when it accepts neither (406). */
export function negotiateSimpleFormat(accept: string | undefined): SimpleFormat | undefined {
  if (accept === undefined || accept.trim() === "") return "html";
  const chosen = new Negotiator({ headers: { accept } }).mediaType(OFFERS.map(([type]) => type));
  if (chosen === undefined) return undefined;
  return OFFERS.find(([type]) => type === chosen)?.[1];
}

/** The `Accept` sent upstream for a format: the exact type, so the upstream cannot pick the other one. */
export function upstreamAccept(format: SimpleFormat): string {
  return format === "json" ? SIMPLE_JSON : `${SIMPLE_HTML}, text/html;q=0.9`;
}
