import { getJson, type Backends, type CacheStats } from "../api";
import { Notice, PageHeading } from "../components";
import { formatAgo, formatBytes, formatCount, formatPercent, formatTime, plural } from "../format";
import { usePoll } from "../hooks";

const REFRESH_MS = 2000;

const HEALTH_LABEL = { ok: "OK", failing: "Failing", unknown: "No requests yet" } as const;

/** Hit ratio, bytes served and fetched, usage per backend and each upstream's health, refreshed live. */
export function Dashboard() {
  const stats = usePoll(() => getJson<CacheStats>("admin/cache/stats", "read the cache statistics"), REFRESH_MS);
  const backends = usePoll(() => getJson<Backends>("admin/backends", "read the backends"), REFRESH_MS);
  const s = stats.data;
  const health = new Map((backends.data?.backends ?? []).map((backend) => [backend.name, backend]));
  const names = [...new Set([...(backends.data?.backends ?? []).map((backend) => backend.name), ...Object.keys(s?.backends ?? {})])];

  return (
    <>
      <PageHeading>Dashboard</PageHeading>
      {stats.error !== undefined && <Notice kind="error">{stats.error.message}</Notice>}
      {s === undefined && stats.error === undefined && <p>Loading…</p>}
      {s !== undefined && (
        <section aria-labelledby="cache-heading">
          <h2 id="cache-heading">Cache</h2>
          <div aria-live="polite" aria-atomic="false">
            <dl class="figures">
              <div class="figure">
                <dt>Hit ratio</dt>
                <dd data-figure="hit-ratio">{formatPercent(s.hit_ratio)}</dd>
              </div>
              <div class="figure">
                <dt>Requests</dt>
                <dd data-figure="requests">
                  {plural(s.hits, "hit", "hits")}, {plural(s.misses, "miss", "misses")}
                  {s.stale + s.revalidated > 0 && `, ${formatCount(s.stale)} stale, ${formatCount(s.revalidated)} revalidated`}
                </dd>
              </div>
              <div class="figure">
                <dt>Served from the cache (bytes saved)</dt>
                <dd data-figure="bytes-from-cache">{formatBytes(s.bytes_from_cache)}</dd>
              </div>
              <div class="figure">
                <dt>Fetched from upstreams</dt>
                <dd data-figure="bytes-from-upstream">{formatBytes(s.bytes_from_upstream)}</dd>
              </div>
              <div class="figure">
                <dt>Cached</dt>
                <dd data-figure="cached">
                  {formatBytes(s.total_bytes)} in {plural(s.entry_count, "entry", "entries")}
                  {s.max_size !== null && ` of ${formatBytes(s.max_size)}`}
                  {!s.index_ready && " (still indexing: recent entries only)"}
                </dd>
              </div>
              <div class="figure">
                <dt>Downloads in progress</dt>
                <dd data-figure="fills">
                  <a href="#/downloads">{formatCount(s.fills_in_progress)}</a>
                </dd>
              </div>
              <div class="figure">
                <dt>Evictions</dt>
                <dd data-figure="evictions">{formatCount(s.evictions)}</dd>
              </div>
            </dl>
          </div>
          {stats.at !== undefined && <p class="hint">Updated {formatTime(new Date(stats.at).toISOString())}, every {REFRESH_MS / 1000} s while this page is shown.</p>}
        </section>
      )}
      <section aria-labelledby="backends-heading">
        <h2 id="backends-heading">Backends</h2>
        {backends.error !== undefined && <Notice kind="error">{backends.error.message}</Notice>}
        {names.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Usage and upstream health per backend</caption>
              <thead>
                <tr>
                  <th scope="col">Backend</th>
                  <th scope="col" class="num">
                    Entries
                  </th>
                  <th scope="col" class="num">
                    Size
                  </th>
                  <th scope="col">Upstream</th>
                  <th scope="col" class="num">
                    Upstream requests
                  </th>
                  <th scope="col" class="num">
                    Errors
                  </th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody aria-live="polite">
                {names.map((name) => {
                  const used = s?.backends[name];
                  const info = health.get(name);
                  const kinds = Object.entries(info?.health.errors_by_kind ?? {}).filter(([, count]) => count > 0);
                  return (
                    <tr key={name} data-backend={name}>
                      <th scope="row">
                        {name}
                        {info !== undefined && <span class="muted"> ({info.type}, {info.prefix})</span>}
                      </th>
                      <td class="num">{used === undefined ? "–" : formatCount(used.entries)}</td>
                      <td class="num">{used === undefined ? "–" : formatBytes(used.bytes)}</td>
                      <td>{info === undefined ? "–" : <span class={`health health-${info.health.state}`}>{HEALTH_LABEL[info.health.state]}</span>}</td>
                      <td class="num">{info === undefined ? "–" : formatCount(info.health.exchanges)}</td>
                      <td class="num">
                        {info === undefined ? "–" : formatCount(info.health.errors)}
                        {kinds.length > 0 && <span class="muted"> ({kinds.map(([kind, count]) => `${count} ${kind.replace(/_/g, " ")}`).join(", ")})</span>}
                      </td>
                      <td>{info === undefined ? "–" : formatAgo(info.health.last_error_at)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
