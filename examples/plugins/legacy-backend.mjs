// A backend written the Python vault's way — `canHandle(path)` and a `fetch(path)` generator of
// chunks — which artifact-vault runs through its adapter. Porting such a backend needs no
// change to its logic: keep the class, let the vault do caching, verification and single-flight.
//
// It serves release archives from a plain file server:
//
//   GET {prefix}{path} → {base_url}/{path}, for paths with one of `extensions`
//
//   backends:
//     - type: custom
//       name: legacy
//       config:
//         prefix: /legacy/
//         module: ./plugins/legacy-backend.mjs   # relative to this config file
//         adapter: source                        # optional: the shape is recognised anyway
//         base_url: https://downloads.example.org/files
//         extensions: [.tar.gz, .zip, .json]     # optional
//
// The adapter's rules (docs/plugins.md): canHandle false → 404; an {error} before any content →
// 404 if it says "not found", else 502, and nothing is cached; an {error} after content aborts the
// download; totalLength is the size the artifact must have; artifacts are immutable unless
// isMutable(path) says otherwise.
import { createUpstreamClient } from "artifact-vault/plugin";

/** @param {unknown} error */
const reason = (error) => (error instanceof Error ? error.message : String(error));

export default class LegacyBackend {
  /**
   * @param {import("artifact-vault/plugin").PluginOptions} options
   * @param {import("artifact-vault/plugin").PluginContext} context
   */
  constructor(options, context) {
    if (typeof options.base_url !== "string") throw new Error("base_url is required");
    this.extensions = Array.isArray(options.extensions) ? options.extensions.map(String) : [".tar.gz", ".zip", ".json"];
    this.client = createUpstreamClient({ baseUrl: options.base_url, timeoutSeconds: 30 });
    this.logger = context.logger;
  }

  /** @param {string} path the path below the prefix, percent-decoded */
  canHandle(path) {
    return this.extensions.some((extension) => path.endsWith(extension));
  }

  /**
   * Index files change upstream; archives never do.
   * @param {string} path
   */
  isMutable(path) {
    return path.endsWith(".json");
  }

  /**
   * @param {string} path
   * @param {{signal?: AbortSignal}} [options]
   */
  async *fetch(path, { signal } = {}) {
    // The path arrives decoded ("my file.zip"): encode each segment again for the URL.
    const upstreamPath = path.split("/").map(encodeURIComponent).join("/");
    let response;
    try {
      response = await this.client.request({ method: "GET", path: upstreamPath, signal, headers: { "accept-encoding": "identity" } });
    } catch (error) {
      yield { error: `download failed: ${reason(error)}` };
      return;
    }
    if (response.status === 404 || response.status === 410) {
      response.body.destroy();
      yield { error: `File not found: ${path}` };
      return;
    }
    if (response.status !== 200) {
      response.body.destroy();
      yield { error: `upstream answered ${response.status}` };
      return;
    }
    const length = response.headers["content-length"];
    const totalLength = length === undefined ? undefined : Number(length);
    const contentType = response.headers["content-type"];
    let bytesDownloaded = 0;
    try {
      for await (const content of response.body) {
        bytesDownloaded += content.length;
        yield { content, bytesDownloaded, totalLength, contentType };
      }
    } catch (error) {
      this.logger.warn({ path, bytesDownloaded }, "download broke off");
      yield { error: `download broke off after ${bytesDownloaded} bytes: ${reason(error)}` };
    } finally {
      // Runs too when the vault stops the generator early.
      response.body.destroy();
    }
  }

  close() {
    return this.client.close();
  }
}
