import type { Logger } from "pino";
import { isVaultError } from "../core/errors.js";
import { KeyLock } from "../storage/key-lock.js";
import type { StorageDriver } from "../storage/storage-driver.js";

/** Keys kept per digest, newest first. */
const KEYS_PER_DIGEST = 16;
/** Compare-and-swap rounds before a record update gives up (it is a hint; the next commit retries). */
const UPDATE_ATTEMPTS = 5;
/** A record is a short JSON list; anything larger is not one of ours. */
const MAX_RECORD_BYTES = 64 * 1024;

/**
 * Which cached entries hold the bytes of a given SHA-256: how the cache finds "the same bytes
 * under another key" (an OCI manifest asked for by digest that is cached under its tag) with one
 * read of a small record — `sha256/<hex>` in a store of its own — instead of listing the cache.
 * On S3 that is one GET where a listing would be a request per thousand entries plus a HEAD per
 * entry.
 *
 * The rule: a record is a hint. It names the keys most recently committed with those bytes;
 * the reader checks each entry itself (it may have been overwritten, evicted or purged since),
 * so a stale record costs a `stat`, never a wrong answer. Updates are compare-and-swap writes
 * (create-only, then If-Match on the record's ETag) retried a few times, so commits racing each
 * other — in this process or in other replicas on a shared bucket — keep each other's keys.
 */
export class DigestIndex {
  readonly #lock = new KeyLock();

  constructor(
    private readonly store: StorageDriver,
    private readonly logger: Logger,
  ) {}

  /** Remembers that `key` now holds bytes with this SHA-256. Never throws: failures are logged. */
  async record(sha256: string, key: string): Promise<void> {
    const recordKey = recordKeyOf(sha256);
    try {
      await this.#lock.run(recordKey, async () => {
        for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
          const current = await this.#read(recordKey);
          if (current?.keys[0] === key) return;
          const keys = [key, ...(current?.keys ?? []).filter((other) => other !== key)].slice(0, KEYS_PER_DIGEST);
          try {
            await this.store.write(recordKeyOf(sha256), bytesOf(JSON.stringify({ keys })), {
              contentType: "application/json",
              ...(current === undefined ? { ifNoneMatch: "*" as const } : { ifMatch: current.etag }),
            });
            return;
          } catch (error) {
            if (!isVaultError(error, "precondition_failed")) throw error;
          }
        }
        this.logger.warn({ sha256, key }, "the digest index record kept changing; not updated");
      });
    } catch (error) {
      this.logger.warn({ err: error, sha256, key }, "could not update the digest index");
    }
  }

  /** The keys last committed with these bytes, newest first (check each: they are hints). */
  async lookup(sha256: string): Promise<readonly string[]> {
    try {
      return (await this.#read(recordKeyOf(sha256)))?.keys ?? [];
    } catch (error) {
      this.logger.warn({ err: error, sha256 }, "could not read the digest index");
      return [];
    }
  }

  async #read(recordKey: string): Promise<{ keys: string[]; etag: string } | undefined> {
    const result = await this.store.read(recordKey);
    if (result === undefined) return undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of result.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_RECORD_BYTES) {
        result.body.destroy();
        return { keys: [], etag: result.info.etag };
      }
      chunks.push(chunk);
    }
    return { keys: parseKeys(Buffer.concat(chunks).toString("utf8")), etag: result.info.etag };
  }
}

function recordKeyOf(sha256: string): string {
  return `sha256/${sha256}`;
}

/** The keys of a record; none for anything unreadable (it is then overwritten). */
function parseKeys(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as { keys?: unknown };
    return Array.isArray(parsed.keys) ? parsed.keys.filter((key): key is string => typeof key === "string") : [];
  } catch {
    return [];
  }
}

async function* bytesOf(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text, "utf8");
}
