import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, request, type Backends, type CacheEntry, type CacheStats } from "../api";
import { ConfirmDialog, LiveStatus, Notice, PageHeading, type Confirmation } from "../components";
import { formatAgo, formatBytes, formatTime } from "../format";

const PAGE_SIZE = 100;

interface Listing {
  readonly entries: CacheEntry[];
  readonly nextCursor: string | null;
}

function freshness(entry: CacheEntry): string {
  if (entry.freshness === "immutable") return "fresh (immutable)";
  if (entry.fresh === null) return "unknown";
  if (entry.fresh) return entry.stale_at === undefined ? "fresh" : `fresh until ${formatTime(entry.stale_at)}`;
  return "stale (revalidated on next use)";
}

/** Cached artifacts by backend and key prefix, with their size, last use and freshness; purge one, or a prefix. */
export function CacheBrowser() {
  const [backendNames, setBackendNames] = useState<string[]>([]);
  const [backend, setBackend] = useState("");
  const [prefix, setPrefix] = useState("");
  const [listing, setListing] = useState<Listing | undefined>(undefined);
  const [query, setQuery] = useState<{ backend: string; prefix: string } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const [confirmation, setConfirmation] = useState<Confirmation | undefined>(undefined);

  useEffect(() => {
    // The backends' names for the filter: the configured ones, and any other the cache holds.
    void Promise.allSettled([
      getJson<Backends>("admin/backends", "read the backends"),
      getJson<CacheStats>("admin/cache/stats", "read the cache statistics"),
    ]).then(([configured, stats]) => {
      const names = new Set<string>();
      if (configured.status === "fulfilled") for (const info of configured.value.backends) names.add(info.name);
      if (stats.status === "fulfilled") for (const name of Object.keys(stats.value.backends)) names.add(name);
      setBackendNames([...names].sort());
    });
    // What is cached, at once: the page opens on the whole cache's first page, as Objects does.
    void list({ backend: "", prefix: "" });
  }, []);

  const list = async (target: { backend: string; prefix: string }, cursor?: string): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (target.backend !== "") params.set("backend", target.backend);
      if (target.prefix !== "") params.set("prefix", target.prefix);
      if (cursor !== undefined) params.set("cursor", cursor);
      const page = await getJson<{ entries: CacheEntry[]; next_cursor: string | null; has_more: boolean }>(`admin/cache/entries?${params.toString()}`, "list the cache");
      const entries = cursor === undefined ? page.entries : [...(listing?.entries ?? []), ...page.entries];
      setListing({ entries, nextCursor: page.has_more ? page.next_cursor : null });
      setQuery(target);
      setStatus(`${entries.length} ${entries.length === 1 ? "entry" : "entries"} listed${page.has_more ? ", more to load" : ""}.`);
    } catch (failure) {
      setError(failure instanceof ApiError ? failure.message : "Listing the cache failed.");
      if (cursor === undefined) setListing(undefined);
    } finally {
      setBusy(false);
    }
  };

  const purge = async (target: { key: string } | { prefix: string }, what: string): Promise<void> => {
    setError(undefined);
    const params = "key" in target ? `key=${encodeURIComponent(target.key)}` : `prefix=${encodeURIComponent(target.prefix)}`;
    try {
      const response = await request(`admin/cache/entries?${params}`, "purge cache entries", { method: "DELETE" });
      const { purged } = (await response.json()) as { purged: number };
      const said = `Purged ${what}: ${purged} ${purged === 1 ? "entry" : "entries"} removed.`;
      if (query !== undefined) await list(query);
      setStatus(said);
    } catch (failure) {
      setError(failure instanceof ApiError ? failure.message : "Purging failed.");
    }
  };

  const confirmPurgeKey = (entry: CacheEntry): void =>
    setConfirmation({
      title: "Purge this cached artifact?",
      message: (
        <p>
          <code>{entry.key}</code> ({formatBytes(entry.size)}) is removed from the cache. The next request for it downloads it from the upstream again.
        </p>
      ),
      confirmLabel: "Purge",
      onConfirm: () => void purge({ key: entry.key }, entry.key),
    });

  /** The prefix the form names: the key prefix, else the backend's. */
  const formPrefix = (): string | undefined => {
    if (prefix !== "") return backend === "" || prefix.startsWith(`${backend}/`) ? prefix : undefined;
    return backend === "" ? undefined : `${backend}/`;
  };

  const confirmPurgePrefix = (): void => {
    const target = formPrefix();
    if (target === undefined) {
      setError(prefix === "" ? "Choose a backend or type a key prefix to purge." : `The key prefix must start with "${backend}/" for the ${backend} backend.`);
      return;
    }
    setConfirmation({
      title: "Purge every entry under this prefix?",
      message: (
        <p>
          Every cached artifact whose key starts with <code>{target}</code> is removed from the cache. Downloads in progress are not cancelled.
        </p>
      ),
      confirmLabel: "Purge all",
      onConfirm: () => void purge({ prefix: target }, `everything under ${target}`),
    });
  };

  return (
    <>
      <PageHeading>Cached artifacts</PageHeading>
      <form
        class="toolbar"
        aria-label="Find cached artifacts"
        onSubmit={(event) => {
          event.preventDefault();
          void list({ backend, prefix });
        }}
      >
        <div class="field">
          <label for="cache-backend">Backend</label>
          <select id="cache-backend" value={backend} onChange={(event) => setBackend(event.currentTarget.value)}>
            <option value="">All backends</option>
            {backendNames.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div class="field grow">
          <label for="cache-prefix">Key prefix</label>
          <input id="cache-prefix" type="text" value={prefix} placeholder="e.g. files/pkg/" aria-describedby="cache-prefix-hint" onInput={(event) => setPrefix(event.currentTarget.value)} />
          <span id="cache-prefix-hint" class="hint">
            Keys are <code>&lt;backend&gt;/&lt;path&gt;</code>.
          </span>
        </div>
        <div class="actions">
          <button type="submit" disabled={busy}>
            List
          </button>
          <button type="button" class="danger-outline" onClick={confirmPurgePrefix}>
            Purge prefix…
          </button>
        </div>
      </form>
      {error !== undefined && <Notice kind="error">{error}</Notice>}
      <LiveStatus message={status} />
      {listing !== undefined && listing.entries.length === 0 && <p>Nothing cached here.</p>}
      {listing !== undefined && listing.entries.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Cached artifacts</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col" class="num">
                  Size
                </th>
                <th scope="col">Last access</th>
                <th scope="col">Cached</th>
                <th scope="col">Freshness</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {listing.entries.map((entry) => (
                <tr key={entry.key} data-key={entry.key}>
                  <th scope="row" class="key">
                    {entry.key}
                  </th>
                  <td class="num">{formatBytes(entry.size)}</td>
                  <td>{entry.last_access === undefined || entry.last_access === null ? "–" : <time dateTime={entry.last_access}>{formatAgo(entry.last_access)}</time>}</td>
                  <td>
                    <time dateTime={entry.cached_at}>{formatTime(entry.cached_at)}</time>
                  </td>
                  <td>
                    <span class={entry.fresh === false ? "stale" : undefined}>{freshness(entry)}</span>
                  </td>
                  <td>
                    <button type="button" class="small danger-outline" aria-label={`Purge ${entry.key}`} onClick={() => confirmPurgeKey(entry)}>
                      Purge…
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {listing?.nextCursor !== null && listing?.nextCursor !== undefined && query !== undefined && (
        <button type="button" disabled={busy} onClick={() => void list(query, listing.nextCursor ?? undefined)}>
          Load more
        </button>
      )}
      <ConfirmDialog confirmation={confirmation} onClose={() => setConfirmation(undefined)} />
    </>
  );
}
