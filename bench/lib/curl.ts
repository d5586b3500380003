/**
 * Large-object transfers with curl (pinned to the load core): the body goes to /dev/null or
 * comes from a file, so the client adds no copies of its own; curl's own speed figure is used.
 */
import { openSync, closeSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { run } from "./processes.js";
import type { SystemUnderTest } from "./system-under-test.js";

export interface Transfer {
  readonly status: number;
  /** Body bytes moved, as curl counted them. */
  readonly bytes: number;
  /** Bytes per second as curl measured it. */
  readonly bytesPerSecond: number;
}

function headerArgs(system: SystemUnderTest): string[] {
  return Object.entries(system.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
}

async function curl(args: readonly string[], cpu: number | undefined): Promise<Transfer> {
  const result = await run("curl", ["-s", "-S", "--fail-with-body", ...args], { cpu });
  const [status, bytes, speed] = result.stdout.trim().split(/\s+/).slice(-3);
  if (result.code !== 0) {
    throw new Error(`curl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  }
  return { status: Number(status), bytes: Number(bytes), bytesPerSecond: Number(speed) };
}

/** PUT a file (`-T`, with `Expect:` disabled so neither server pays a 100-continue round trip). */
export function curlPut(
  system: SystemUnderTest,
  path: string,
  file: string,
  cpu: number | undefined,
): Promise<Transfer> {
  return curl(
    [
      ...headerArgs(system),
      "-H",
      "Expect:",
      "-T",
      file,
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{size_upload} %{speed_upload}",
      `${system.baseUrl}${path}`,
    ],
    cpu,
  );
}

export function curlGet(system: SystemUnderTest, path: string, cpu: number | undefined): Promise<Transfer> {
  return curl(
    [...headerArgs(system), "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{speed_download}", `${system.baseUrl}${path}`],
    cpu,
  );
}

/** Writes `bytes` of random data to `file` in 1 MiB chunks (never the whole thing in memory). */
export function writeRandomFile(file: string, bytes: number): void {
  const fd = openSync(file, "w");
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let written = 0; written < bytes; ) {
      const n = Math.min(chunk.length, bytes - written);
      randomFillSync(chunk, 0, n);
      writeSync(fd, chunk, 0, n);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
}
