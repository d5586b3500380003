/**
 * Large-object transfers with curl (pinned to the load core): the body goes to /dev/null or
 * comes from a file, so the client adds no copies of its own; curl's own speed figure is used.
 */
import { openSync, closeSync, writeSync } from "node:fs";
import { createHash, randomFillSync } from "node:crypto";
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

/** A GET timed by curl itself, with the response's cache header. */
export interface TimedTransfer extends Transfer {
  /** Seconds from the start until the first response byte (curl's `time_starttransfer`). */
  readonly firstByteSeconds: number;
  /** Seconds for the whole transfer (curl's `time_total`). */
  readonly totalSeconds: number;
  /** The `X-Cache` response header ("" when absent): HIT / MISS / ... for the vault and nginx. */
  readonly xCache: string;
}

/**
 * `GET baseUrl + path` to /dev/null with curl's own timings. A fresh connection each time, as a
 * build tool's first request would have: both systems pay the same connect. `curlArgs` go before
 * the URL (e.g. `-L` to follow a redirect: curl's times then add up every request's).
 */
export async function curlTimed(
  baseUrl: string,
  path: string,
  cpu: number | undefined,
  headers: Readonly<Record<string, string>> = {},
  curlArgs: readonly string[] = [],
): Promise<TimedTransfer> {
  const args = [
    ...Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    ...curlArgs,
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}|%{size_download}|%{speed_download}|%{time_starttransfer}|%{time_total}|%header{x-cache}",
    `${baseUrl}${path}`,
  ];
  const result = await run("curl", ["-s", "-S", ...args], { cpu });
  if (result.code !== 0) {
    throw new Error(`curl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
  }
  const [status, bytes, speed, firstByte, total, xCache] = result.stdout.trim().split("|");
  return {
    status: Number(status),
    bytes: Number(bytes),
    bytesPerSecond: Number(speed),
    firstByteSeconds: Number(firstByte),
    totalSeconds: Number(total),
    xCache: (xCache ?? "").trim(),
  };
}

/**
 * Writes `bytes` of random data to `file` in 1 MiB chunks (never the whole thing in memory);
 * returns the file's SHA-256 (hex), to check what servers send back.
 */
export function writeRandomFile(file: string, bytes: number): string {
  const fd = openSync(file, "w");
  const hash = createHash("sha256");
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let written = 0; written < bytes; ) {
      const n = Math.min(chunk.length, bytes - written);
      randomFillSync(chunk, 0, n);
      writeSync(fd, chunk, 0, n);
      hash.update(chunk.subarray(0, n));
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}
