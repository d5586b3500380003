import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, authHeaders, failure, getJson, objectPath, request, vaultUrl } from "../api";
import { ConfirmDialog, LiveStatus, Notice, PageHeading, type Confirmation } from "../components";
import { formatBytes } from "../format";

const PAGE_SIZE = 100;

interface Upload {
  readonly key: string;
  readonly loaded: number;
  readonly total: number;
}

/**
 * PUTs `file` as `key` with XMLHttpRequest, whose upload events give progress (fetch has none).
 * Resolves with the vault's answer, rejects with an `ApiError`.
 */
function upload(key: string, file: File, onProgress: (loaded: number, total: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", vaultUrl(objectPath(key)));
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("content-type", file.type === "" ? "application/octet-stream" : file.type);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onerror = () => reject(new ApiError(0, "Uploading failed: the connection to the vault broke."));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve();
        return;
      }
      const retryAfter = xhr.getResponseHeader("retry-after");
      const response = new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText, headers: retryAfter === null ? {} : { "retry-after": retryAfter } });
      void failure(response, `upload ${key}`).then(reject, reject);
    };
    xhr.send(file);
  });
}

/** Saves a fetched object under its key's last segment (a link cannot carry the token: fetch, then a blob URL). */
async function download(key: string): Promise<number> {
  const response = await request(objectPath(key), `download ${key}`);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = key.split("/").pop() || "download";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return blob.size;
}

/** The object store: list by prefix, upload with progress, download and delete. */
export function Objects() {
  const [prefix, setPrefix] = useState("");
  const [keys, setKeys] = useState<string[] | undefined>(undefined);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [listedPrefix, setListedPrefix] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const [file, setFile] = useState<File | undefined>(undefined);
  const [key, setKey] = useState("");
  const [progress, setProgress] = useState<Upload | undefined>(undefined);
  const [confirmation, setConfirmation] = useState<Confirmation | undefined>(undefined);
  const fileInput = useRef<HTMLInputElement>(null);

  const list = async (wanted: string, cursor?: string): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (wanted !== "") params.set("prefix", wanted);
      if (cursor !== undefined) params.set("cursor", cursor);
      const page = await getJson<{ keys: string[]; next_cursor: string | null; has_more: boolean }>(`objects?${params.toString()}`, "list objects");
      const all = cursor === undefined ? page.keys : [...(keys ?? []), ...page.keys];
      setKeys(all);
      setNextCursor(page.has_more ? page.next_cursor : null);
      setListedPrefix(wanted);
      setStatus(`${all.length} ${all.length === 1 ? "object" : "objects"} listed${page.has_more ? ", more to load" : ""}.`);
    } catch (failed) {
      setError(failed instanceof ApiError ? failed.message : "Listing the objects failed.");
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => void list(""), []);

  const submitUpload = async (event: Event): Promise<void> => {
    event.preventDefault();
    setError(undefined);
    if (file === undefined) {
      setError("Choose a file to upload.");
      fileInput.current?.focus();
      return;
    }
    const target = key.trim() === "" ? `${prefix}${file.name}` : key.trim();
    setProgress({ key: target, loaded: 0, total: file.size });
    setStatus(`Uploading ${target}…`);
    try {
      await upload(target, file, (loaded, total) => setProgress({ key: target, loaded, total }));
      setStatus(`Uploaded ${target} (${formatBytes(file.size)}).`);
      setKey("");
      setFile(undefined);
      if (fileInput.current !== null) fileInput.current.value = "";
      await list(listedPrefix);
      setStatus(`Uploaded ${target} (${formatBytes(file.size)}).`);
    } catch (failed) {
      setError(failed instanceof ApiError ? failed.message : "Uploading failed.");
      setStatus("");
    } finally {
      setProgress(undefined);
    }
  };

  const remove = async (target: string): Promise<void> => {
    setError(undefined);
    try {
      await request(objectPath(target), `delete ${target}`, { method: "DELETE" });
      setKeys((current) => current?.filter((candidate) => candidate !== target));
      setStatus(`Deleted ${target}.`);
    } catch (failed) {
      setError(failed instanceof ApiError ? failed.message : "Deleting failed.");
    }
  };

  return (
    <>
      <PageHeading>Objects</PageHeading>
      <section aria-labelledby="upload-heading">
        <h2 id="upload-heading">Upload</h2>
        <form class="toolbar" onSubmit={(event) => void submitUpload(event)}>
          <div class="field">
            <label for="upload-file">File</label>
            <input
              ref={fileInput}
              id="upload-file"
              type="file"
              onChange={(event) => {
                const chosen = event.currentTarget.files?.[0];
                setFile(chosen);
              }}
            />
          </div>
          <div class="field grow">
            <label for="upload-key">Key</label>
            <input
              id="upload-key"
              type="text"
              value={key}
              placeholder={file === undefined ? "the file's name, after the prefix below" : `${prefix}${file.name}`}
              aria-describedby="upload-key-hint"
              onInput={(event) => setKey(event.currentTarget.value)}
            />
            <span id="upload-key-hint" class="hint">
              Empty: the prefix below and the file&apos;s name. An object with this key is replaced.
            </span>
          </div>
          <div class="actions">
            <button type="submit" disabled={progress !== undefined}>
              Upload
            </button>
          </div>
        </form>
        {progress !== undefined && (
          <p class="upload-progress">
            <label for="upload-progress">Uploading {progress.key}</label>{" "}
            <progress id="upload-progress" max={progress.total || 1} value={progress.loaded} />{" "}
            <span>
              {formatBytes(progress.loaded)} of {formatBytes(progress.total)}
            </span>
          </p>
        )}
      </section>
      <section aria-labelledby="browse-heading">
        <h2 id="browse-heading">Browse</h2>
        <form
          class="toolbar"
          aria-label="Find objects"
          onSubmit={(event) => {
            event.preventDefault();
            void list(prefix);
          }}
        >
          <div class="field grow">
            <label for="objects-prefix">Prefix</label>
            <input id="objects-prefix" type="text" value={prefix} placeholder="e.g. team/" onInput={(event) => setPrefix(event.currentTarget.value)} />
          </div>
          <div class="actions">
            <button type="submit" disabled={busy}>
              List
            </button>
          </div>
        </form>
        {error !== undefined && <Notice kind="error">{error}</Notice>}
        <LiveStatus message={status} />
        {keys !== undefined && keys.length === 0 && <p>No objects{listedPrefix === "" ? "" : ` under ${listedPrefix}`}.</p>}
        {keys !== undefined && keys.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Objects{listedPrefix === "" ? "" : ` under ${listedPrefix}`}</caption>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((objectKey) => (
                  <tr key={objectKey} data-key={objectKey}>
                    <th scope="row" class="key">
                      {objectKey}
                    </th>
                    <td class="row-actions">
                      <button
                        type="button"
                        class="small"
                        aria-label={`Download ${objectKey}`}
                        onClick={() =>
                          void download(objectKey).then(
                            (size) => setStatus(`Downloaded ${objectKey} (${formatBytes(size)}).`),
                            (failed: unknown) => setError(failed instanceof ApiError ? failed.message : "Downloading failed."),
                          )
                        }
                      >
                        Download
                      </button>
                      <button
                        type="button"
                        class="small danger-outline"
                        aria-label={`Delete ${objectKey}`}
                        onClick={() =>
                          setConfirmation({
                            title: "Delete this object?",
                            message: (
                              <p>
                                <code>{objectKey}</code> is deleted from the store. This cannot be undone.
                              </p>
                            ),
                            confirmLabel: "Delete",
                            onConfirm: () => void remove(objectKey),
                          })
                        }
                      >
                        Delete…
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {nextCursor !== null && (
          <button type="button" disabled={busy} onClick={() => void list(listedPrefix, nextCursor)}>
            Load more
          </button>
        )}
      </section>
      <ConfirmDialog confirmation={confirmation} onClose={() => setConfirmation(undefined)} />
    </>
  );
}
