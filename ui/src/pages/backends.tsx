import { getJson, type BackendInfo, type Backends as BackendsJson, type ClientSnippet } from "../api";
import { Notice, PageHeading, Snippet } from "../components";
import { formatAgo, plural } from "../format";
import { usePoll } from "../hooks";

const REFRESH_MS = 5000;

const HEALTH_TEXT = {
  ok: "OK: the latest request to the upstream was answered",
  failing: "Failing: the latest request to the upstream failed",
  unknown: "No requests to the upstream since the vault started",
} as const;

/** One client's settings, folded away but for the first (the page stays short on a laptop screen). */
function Client({ backend, client, open }: { backend: BackendInfo; client: ClientSnippet; open: boolean }) {
  return (
    <details class="client" open={open} data-tool={client.tool}>
      <summary>
        <h3>{client.tool}</h3>
      </summary>
      {client.unavailable !== undefined && <p>Not available for this backend: {client.unavailable}</p>}
      {client.files.map((file) => (
        <Snippet
          key={file.path}
          text={file.text}
          label={`Copy the ${client.tool} settings${file.path === "" ? "" : ` for ${file.path}`} (${backend.name})`}
          caption={file.path === "" ? "Command" : <code>{file.path}</code>}
        />
      ))}
      {client.command !== null && <Snippet text={client.command} label={`Copy the ${client.tool} setup command (${backend.name})`} caption="Or let the command write it" />}
      {client.notes.length > 0 && (
        <ul class="notes">
          {client.notes.map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      )}
    </details>
  );
}

/** Each configured backend: where it is, its upstream and its health, and how to point each client at it. */
export function Backends() {
  const polled = usePoll(() => getJson<BackendsJson>("admin/backends", "read the backends"), REFRESH_MS);
  const data = polled.data;
  return (
    <>
      <PageHeading>Backends and client setup</PageHeading>
      {polled.error !== undefined && <Notice kind="error">{polled.error.message}</Notice>}
      {data === undefined && polled.error === undefined && <p>Loading…</p>}
      {data !== undefined && (
        <p>
          Settings for the vault at <code>{data.vault_url}</code>
          {data.token_required ? (
            <>
              . The vault wants a token from its clients: put a token with the <code>read</code> scope where the settings say <code>&lt;token&gt;</code>.
            </>
          ) : (
            ". Its clients need no token."
          )}
        </p>
      )}
      {data?.backends.map((backend) => (
        <section key={backend.name} class="backend" aria-labelledby={`backend-${backend.name}`} data-backend={backend.name}>
          <h2 id={`backend-${backend.name}`}>{backend.name}</h2>
          <dl class="properties">
            <dt>Type</dt>
            <dd>{backend.type}</dd>
            <dt>Served at</dt>
            <dd>
              <code>{backend.prefix}</code>
              {backend.registry_path !== undefined && (
                <>
                  {" "}
                  and <code>{backend.registry_path}</code> (registry API)
                </>
              )}
            </dd>
            <dt>Upstream</dt>
            <dd>
              {backend.upstreams.length === 0
                ? "–"
                : backend.upstreams.map((upstream) => (
                    <span key={upstream.option} class="upstream">
                      <code>{upstream.url}</code> <span class="muted">({upstream.option})</span>
                    </span>
                  ))}
            </dd>
            <dt>Upstream health</dt>
            <dd aria-live="polite">
              <span class={`health health-${backend.health.state}`}>{HEALTH_TEXT[backend.health.state]}</span>; {plural(backend.health.exchanges, "request", "requests")},{" "}
              {plural(backend.health.errors, "error", "errors")}
              {backend.health.last_error_at !== null && `, the last ${formatAgo(backend.health.last_error_at)}`}
            </dd>
          </dl>
          {backend.clients.map((client, index) => (
            <Client key={client.tool} backend={backend} client={client} open={index === 0} />
          ))}
        </section>
      ))}
    </>
  );
}
