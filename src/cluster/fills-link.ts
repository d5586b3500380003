/**
 * The downloads in progress with `workers: N` (`GET /admin/cache/fills`, `fills_in_progress` of
 * `/admin/cache/stats`, the web UI's Downloads page, `cache fills`): a request reaches one worker,
 * and must list the whole vault's, the same list whichever worker answers. It is a question put
 * to every worker (`gather.ts`): each answers with its `ArtifactCache.fillsInProgress()`, the
 * primary merges them (`mergeFills`) and answers. A worker still starting has none; one that
 * exits meanwhile counts as answered (its downloads ended with it); one that does not answer in
 * time fails the request with 503, as `/metrics` does, rather than show a list that loses
 * downloads at random.
 *
 * Dates cross the link as strings (JSON) and are made dates again on each side.
 */
import type { FillProgress } from "../cache/artifact-cache.js";
import type { FillsSource } from "../cache/cache-admin.js";
import { answerGather, askGather, serveGather, GATHER_TIMEOUT_MS, type Gather } from "./gather.js";
import type { ClusterHub } from "./hub.js";
import type { EventLink } from "./store-link.js";

/** The event the primary sends each worker for its downloads in progress. */
export const FILLS_REQUEST_EVENT = "fills.request";
const FILLS: Gather = { op: "fills.gather", event: FILLS_REQUEST_EVENT, what: "the workers' downloads in progress" };

/**
 * The worker's side, set up as soon as its link exists: it answers the primary's requests for its
 * downloads — none while the worker is still starting — and the admin routes ask for everyone's.
 */
export class WorkerFills {
  #local: (() => readonly FillProgress[]) | undefined;

  constructor(private readonly link: EventLink) {
    answerGather(link, FILLS, () => this.#local?.() ?? []);
  }

  /** This worker's downloads (`ArtifactCache.fillsInProgress`), from now on; returns what lists every worker's. */
  source(local: () => readonly FillProgress[]): FillsSource {
    this.#local = local;
    const link = this.link;
    return async () => fillsFromWire(await askGather(link, FILLS));
  }
}

/** The primary's side: every worker's downloads, merged, for whichever worker asks. */
export function serveClusterFills(hub: ClusterHub, timeoutMs = GATHER_TIMEOUT_MS): void {
  serveGather(hub, FILLS, (answers) => mergeFills([...answers.values()].map(fillsFromWire)), timeoutMs);
}

/**
 * One entry per download, however many workers show it. Two workers show the same key when the
 * clients of one want what the other downloads: the first tails the other's spool into a fill of
 * its own (`ArtifactCache#follow`), registered with the bytes it has tailed, started when it began
 * to follow — never ahead of the download itself; or when several read a copy another has just
 * stored (`#relay`). The merged entry is the one furthest along (the downloader's; of equals the
 * earliest), started when the first of them started, with the waiters of every worker summed.
 * The order is the lists' (the caller sorts).
 */
export function mergeFills(lists: Iterable<readonly FillProgress[]>): FillProgress[] {
  const byKey = new Map<string, FillProgress>();
  for (const list of lists) {
    for (const fill of list) {
      const seen = byKey.get(fill.key);
      if (seen === undefined) {
        byKey.set(fill.key, fill);
        continue;
      }
      const earlier = fill.startedAt.getTime() < seen.startedAt.getTime();
      const ahead = fill.bytes > seen.bytes || (fill.bytes === seen.bytes && earlier) ? fill : seen;
      byKey.set(fill.key, {
        ...ahead,
        startedAt: earlier ? fill.startedAt : seen.startedAt,
        waiters: seen.waiters + fill.waiters,
      });
    }
  }
  return [...byKey.values()];
}

/** `FillProgress` as JSON carries it: the date as a string, an unknown size absent (or null). */
interface WireFill {
  readonly key: string;
  readonly backend: string;
  readonly bytes: number;
  readonly total?: number | null;
  readonly percent?: number | null;
  readonly startedAt: string;
  readonly waiters: number;
}

/** A list of downloads that crossed the link, with its dates made dates again. */
export function fillsFromWire(value: unknown): FillProgress[] {
  return (value as readonly WireFill[]).map((fill) => ({
    key: fill.key,
    backend: fill.backend,
    bytes: fill.bytes,
    total: fill.total ?? undefined,
    percent: fill.percent ?? undefined,
    startedAt: new Date(fill.startedAt),
    waiters: fill.waiters,
  }));
}
