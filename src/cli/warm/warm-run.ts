/**
 * One `cache warm` run: sources (a requirements file, a lockfile, images, Debian packages, a
 * list of paths) turn their inputs into items — index documents read through the vault, and
 * artifacts made sure of — and the run does each item once (the same URL named twice is one
 * item), all sources at the same time, within the requests' concurrency.
 *
 * Every item ends `fetched` (downloaded through the vault now), `cached` (the vault had it:
 * nothing went upstream) or failed with a reason; inputs that cannot be warmed at all (a git
 * dependency, an editable install) are `skipped`. A second run over the same inputs therefore
 * reports every item `cached` and makes the vault ask its upstreams for nothing (as long as its
 * index documents are fresh: see `cache.metadata_ttl`).
 */
import { ItemFailure, type Served, type VaultDocument, type VaultRequests } from "./vault-requests.js";

/** The requests a run makes (`VaultRequests`; tests hand in their own). */
export type WarmRequests = Pick<VaultRequests, "warm" | "document">;

/** What sources may do. */
export interface WarmContext {
  /**
   * Reads an index document through the vault; counted as an item. Undefined when it could not
   * be read (the failure is listed) — or, with `optional`, when the vault answered 404 (then it
   * is no item at all: the caller tries another name).
   */
  document(url: URL, label: string, options?: { readonly headers?: Readonly<Record<string, string>>; readonly optional?: boolean }): Promise<VaultDocument | undefined>;
  /** Makes sure an artifact is cached (once per URL and headers). */
  artifact(url: URL, label: string, headers?: Readonly<Record<string, string>>): void;
  /** An input that could not be turned into items (a package not on the index): listed as failed. */
  failed(label: string, reason: string): void;
  /** An input that is not for the vault (a git dependency): listed, not a failure. */
  skipped(label: string, reason: string): void;
}

export interface WarmSource {
  run(context: WarmContext): Promise<void>;
}

export interface ItemResult {
  readonly label: string;
  readonly served: Served;
  readonly bytes: number;
}

export interface Problem {
  readonly label: string;
  readonly reason: string;
}

/** What the progress display hears. */
export interface WarmListener {
  /** A new item is known (the total grows). */
  planned(): void;
  /** Body bytes arrived (negative: a download that broke off is counted out again). */
  bytes(count: number): void;
  done(result: ItemResult): void;
  /** `item`: a planned item failed (it counts as finished); otherwise an input that named nothing to fetch. */
  failed(problem: Problem, item: boolean): void;
}

export interface WarmSummary {
  readonly fetched: readonly ItemResult[];
  readonly cached: readonly ItemResult[];
  readonly failures: readonly Problem[];
  readonly skipped: readonly Problem[];
  readonly elapsedMs: number;
  /** Interrupted (SIGINT/SIGTERM): the counts cover what finished before. */
  readonly interrupted: boolean;
}

/** Index documents larger than this are refused (Debian's main Packages.xz is ~9 MB; PyPI's largest pages ~30 MB). */
const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;

/**
 * Runs every source to the end. `controller` is the one the requests were made with: the run
 * aborts it when a failure ends the run (a refused token, an unreachable vault), and whoever
 * else aborts it (SIGINT) interrupts the run.
 */
export async function runWarm(sources: readonly WarmSource[], requests: WarmRequests, listener: WarmListener, controller: AbortController, now: () => number = Date.now): Promise<WarmSummary> {
  const started = now();
  const run = new WarmRun(requests, listener, controller);
  await Promise.all(sources.map((source) => source.run(run).catch((error: unknown) => run.end(error))));
  await run.settled();
  if (run.fatal !== undefined) throw run.fatal;
  return { ...run.results(), elapsedMs: now() - started, interrupted: controller.signal.aborted };
}

class WarmRun implements WarmContext {
  readonly #requests: WarmRequests;
  readonly #listener: WarmListener;
  readonly #controller: AbortController;
  readonly #documents = new Map<string, Promise<VaultDocument | undefined>>();
  readonly #artifacts = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  readonly #fetched: ItemResult[] = [];
  readonly #cached: ItemResult[] = [];
  readonly #failures: Problem[] = [];
  readonly #skipped: Problem[] = [];
  /** A failure that ended the run (a refused token, an unreachable vault). */
  fatal: Error | undefined;

  constructor(requests: WarmRequests, listener: WarmListener, controller: AbortController) {
    this.#requests = requests;
    this.#listener = listener;
    this.#controller = controller;
  }

  get #stopped(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Ends the run for `error`, unless it is only the echo of an interruption or of an earlier end. */
  end(error: unknown): void {
    if (this.#stopped) return;
    this.fatal = error instanceof Error ? error : new Error(String(error));
    this.#controller.abort(this.fatal);
  }

  document(url: URL, label: string, options: { readonly headers?: Readonly<Record<string, string>>; readonly optional?: boolean } = {}): Promise<VaultDocument | undefined> {
    const headers = options.headers ?? {};
    const key = itemKey(url, headers);
    let pending = this.#documents.get(key);
    if (pending === undefined) {
      pending = this.#readDocument(url, label, headers, options.optional === true);
      this.#documents.set(key, pending);
    }
    return pending;
  }

  artifact(url: URL, label: string, headers: Readonly<Record<string, string>> = {}): void {
    const key = itemKey(url, headers);
    if (this.#artifacts.has(key) || this.#stopped) return;
    this.#artifacts.add(key);
    this.#listener.planned();
    const work = this.#requests
      .warm(url, headers, (bytes) => this.#listener.bytes(bytes))
      .then(
        ({ served, bytes }) => this.#done({ label, served, bytes }),
        (error: unknown) => this.#itemFailed(label, error),
      );
    this.#track(work);
  }

  failed(label: string, reason: string): void {
    this.#failure({ label, reason }, false);
  }

  skipped(label: string, reason: string): void {
    this.#skipped.push({ label, reason });
  }

  /** Waits until no item is left (items may plan more items). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  results(): Omit<WarmSummary, "elapsedMs" | "interrupted"> {
    return { fetched: this.#fetched, cached: this.#cached, failures: this.#failures, skipped: this.#skipped };
  }

  async #readDocument(url: URL, label: string, headers: Readonly<Record<string, string>>, optional: boolean): Promise<VaultDocument | undefined> {
    if (this.#stopped) return undefined;
    let planned = false;
    if (!optional) {
      this.#listener.planned();
      planned = true;
    }
    const work = this.#requests.document(url, headers, MAX_DOCUMENT_BYTES).then(
      (document) => {
        if (!planned) this.#listener.planned();
        if (document.served === "fetched") this.#listener.bytes(document.body.length);
        this.#done({ label, served: document.served, bytes: document.body.length });
        return document;
      },
      (error: unknown) => {
        if (optional && error instanceof ItemFailure && error.notFound) return undefined;
        if (!planned) this.#listener.planned();
        this.#itemFailed(label, error);
        return undefined;
      },
    );
    this.#track(work.then(() => undefined));
    return work;
  }

  #done(result: ItemResult): void {
    (result.served === "fetched" ? this.#fetched : this.#cached).push(result);
    this.#listener.done(result);
  }

  #itemFailed(label: string, error: unknown): void {
    if (this.#stopped) return;
    if (error instanceof ItemFailure) this.#failure({ label, reason: error.message }, true);
    else this.end(error);
  }

  #failure(problem: Problem, item: boolean): void {
    this.#failures.push(problem);
    this.#listener.failed(problem, item);
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }
}

function itemKey(url: URL, headers: Readonly<Record<string, string>>): string {
  return `${url.href}\n${Object.entries(headers)
    .map(([name, value]) => `${name.toLowerCase()}: ${value}`)
    .sort()
    .join("\n")}`;
}
