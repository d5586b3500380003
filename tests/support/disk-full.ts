import { open } from "node:fs/promises";
import { devNull } from "node:os";
import { mock } from "node:test";

/** A full disk, simulated in this process: see `simulateDiskFull`. */
export interface DiskFull {
  /** How many writes failed so far. */
  readonly failures: number;
  /** Gives the disk its space back. */
  restore(): void;
}

/**
 * Makes every `FileHandle.write` in this process fail as a full disk does (`ENOSPC`, or
 * `EDQUOT` for a full quota) once `afterBytes` more bytes have been written. It patches the
 * FileHandle prototype (what the filesystem driver writes object files with), so it reaches a
 * server running in the same process; call `restore` (in a `finally`) to end it.
 */
export async function simulateDiskFull(options: { afterBytes?: number; code?: "ENOSPC" | "EDQUOT" } = {}): Promise<DiskFull> {
  const probe = await open(devNull, "r");
  const prototype = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<{ bytesWritten: number }> };
  await probe.close();
  const original = prototype.write;
  const code = options.code ?? "ENOSPC";
  let budget = options.afterBytes ?? 0;
  let failures = 0;
  const patched = mock.method(prototype, "write", async function (this: unknown, ...args: unknown[]) {
    const [data, offsetOrOptions, length] = args;
    const wanted =
      typeof length === "number"
        ? length
        : typeof data === "string"
          ? Buffer.byteLength(data)
          : ArrayBuffer.isView(data)
            ? data.byteLength - (typeof offsetOrOptions === "number" ? offsetOrOptions : 0)
            : 0;
    if (wanted > budget) {
      failures++;
      const message = code === "ENOSPC" ? "no space left on device" : "disk quota exceeded";
      throw Object.assign(new Error(`${code}: ${message}, write`), { code, syscall: "write" });
    }
    const result = await original.apply(this, args);
    budget -= result.bytesWritten;
    return result;
  });
  return {
    get failures() {
      return failures;
    },
    restore: () => patched.mock.restore(),
  };
}
