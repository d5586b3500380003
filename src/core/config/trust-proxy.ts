import proxyAddr from "proxy-addr";

/**
 * Which connecting peers may say who the client is (`trust_proxy`): nobody (`false`, the
 * default: the address is the connection's), everybody (`true`: only when the vault is reachable
 * through the proxy alone), the nearest `n` hops, or the proxies listed by address, CIDR range or
 * the names `loopback`, `linklocal` and `uniquelocal`.
 */
export type TrustProxy = boolean | number | readonly string[];

/**
 * Decides, for each hop from the connection outwards (0 is the connecting peer, then the
 * `X-Forwarded-For` entries from the right), whether that hop is a proxy to believe.
 */
export type TrustFunction = (address: string, hop: number) => boolean;

/** Throws a TypeError naming the entry for an address or range it cannot read (the config schema checks with it). */
export function trustFunction(trust: TrustProxy): TrustFunction {
  if (trust === true) return () => true;
  if (trust === false) return () => false;
  if (typeof trust === "number") return (_address, hop) => hop < trust;
  return proxyAddr.compile([...trust]);
}

/** What the start-up log says about it; undefined when nothing is trusted. */
export function describeTrustProxy(trust: TrustProxy): string | undefined {
  if (trust === false) return undefined;
  if (trust === true) return "X-Forwarded-For from any peer";
  if (typeof trust === "number") return `X-Forwarded-For from the nearest ${trust} proxy hop${trust === 1 ? "" : "s"}`;
  return `X-Forwarded-For from ${trust.join(", ")}`;
}
