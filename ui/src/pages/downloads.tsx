import { useRef } from "preact/hooks";
import { getJson, type Fill } from "../api";
import { Notice, PageHeading } from "../components";
import { formatAgo, formatBytes, formatCount, formatRate } from "../format";
import { usePoll } from "../hooks";

const REFRESH_MS = 1000;

/** Downloads from upstream in progress: bytes, rate (between two refreshes) and the clients waiting for each. */
export function Downloads() {
  // Bytes of each download at the previous answer, and when: the rate is the difference.
  const previous = useRef(new Map<string, { bytes: number; at: number }>());
  const polled = usePoll(async () => {
    const { fills } = await getJson<{ fills: Fill[] }>("admin/cache/fills", "list the downloads in progress");
    const at = Date.now();
    const rates = new Map<string, number | undefined>();
    const seen = new Map<string, { bytes: number; at: number }>();
    for (const fill of fills) {
      const before = previous.current.get(fill.key);
      rates.set(fill.key, before === undefined || at <= before.at ? undefined : ((fill.bytes - before.bytes) * 1000) / (at - before.at));
      seen.set(fill.key, { bytes: fill.bytes, at });
    }
    previous.current = seen;
    return { fills, rates, at };
  }, REFRESH_MS);
  const fills = polled.data?.fills ?? [];
  const rates = polled.data?.rates ?? new Map<string, number | undefined>();
  const at = polled.data?.at ?? Date.now();

  return (
    <>
      <PageHeading>Downloads in progress</PageHeading>
      {polled.error !== undefined && <Notice kind="error">{polled.error.message}</Notice>}
      <p role="status" aria-live="polite" data-figure="fill-count">
        {polled.data === undefined
          ? "Loading…"
          : fills.length === 0
            ? "No downloads in progress."
            : `${fills.length} ${fills.length === 1 ? "download" : "downloads"} in progress.`}
      </p>
      {fills.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Downloads from upstream in progress, refreshed every second</caption>
            <thead>
              <tr>
                <th scope="col">Artifact</th>
                <th scope="col">Backend</th>
                <th scope="col">Progress</th>
                <th scope="col" class="num">
                  Rate
                </th>
                <th scope="col" class="num">
                  Waiting clients
                </th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {fills.map((fill) => {
                const label = fill.total === null ? `${formatBytes(fill.bytes)} so far` : `${formatBytes(fill.bytes)} of ${formatBytes(fill.total)}${fill.percent === null ? "" : ` (${fill.percent} %)`}`;
                return (
                  <tr key={fill.key} data-key={fill.key}>
                    <th scope="row" class="key">
                      {fill.key}
                    </th>
                    <td>{fill.backend}</td>
                    <td>
                      <progress max={fill.total ?? undefined} value={fill.total === null ? undefined : fill.bytes} aria-label={`Progress of ${fill.key}`} />{" "}
                      <span data-figure="bytes">{label}</span>
                    </td>
                    <td class="num" data-figure="rate">
                      {formatRate(rates.get(fill.key))}
                    </td>
                    <td class="num" data-figure="waiters">
                      {fill.waiters === undefined ? "–" : formatCount(fill.waiters)}
                    </td>
                    <td>{formatAgo(fill.started_at, at)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <p class="hint">Refreshed every second while this page is shown; with several worker processes, it lists the downloads of all of them.</p>
    </>
  );
}
