import { Piscina } from "piscina";
import { rewriteManifest, rewritePackument, tarballSourcesOf, type RewrittenPackument, type TarballSource } from "./packument-rewrite.js";
import type { PackageName } from "./npm-paths.js";
import type { PackumentResult, PackumentTask } from "./packument-worker.js";

/** Documents below this size are handled on the event loop: a worker's round trip costs more. */
const INLINE_LIMIT = 512 * 1024;

/**
 * The packument work of one npm backend: small documents inline, large ones in a worker thread
 * (one, started on demand and stopped when idle), so the event loop stays free while a
 * packument of tens of MB is parsed and rewritten.
 */
export class PackumentJobs {
  #pool: Piscina<PackumentTask, PackumentResult> | undefined;

  async rewritePackument(json: Buffer, name: PackageName, registryBase: string): Promise<RewrittenPackument> {
    if (json.length < INLINE_LIMIT) return rewritePackument(json.toString("utf8"), name, registryBase);
    return rewritten(await this.#run({ kind: "packument", json, name, registryBase }));
  }

  async rewriteManifest(json: Buffer, name: PackageName): Promise<RewrittenPackument> {
    if (json.length < INLINE_LIMIT) return rewriteManifest(json.toString("utf8"), name);
    return rewritten(await this.#run({ kind: "manifest", json, name, registryBase: "" }));
  }

  async tarballSources(json: Buffer, name: PackageName, registryBase: string): Promise<Record<string, TarballSource>> {
    if (json.length < INLINE_LIMIT) return tarballSourcesOf(json.toString("utf8"), name, registryBase);
    const result = await this.#run({ kind: "sources", json, name, registryBase });
    if (result.kind !== "sources") throw new Error("the packument worker answered another task");
    return result.value;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.destroy();
  }

  #run(task: PackumentTask): Promise<PackumentResult> {
    this.#pool ??= new Piscina<PackumentTask, PackumentResult>({
      filename: new URL("./packument-worker.js", import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 30_000,
    });
    return this.#pool.run(task);
  }
}

function rewritten(result: PackumentResult): RewrittenPackument {
  if (result.kind !== "rewritten") throw new Error("the packument worker answered another task");
  return result.value;
}
