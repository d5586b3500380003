/**
 * A progress bar for `objects put|get`: bytes, percent, rate and ETA on standard error — only
 * when that is a terminal and only for transfers of at least `threshold` bytes (known up front,
 * or reached so far when the size is unknown, e.g. reading stdin). Anything else gets nothing,
 * so logs and pipes never see control characters.
 */
import { SingleBar } from "cli-progress";
import type { Progress, ProgressListener } from "../client/index.js";

/** Transfers smaller than this finish too fast for a bar to help. */
export const PROGRESS_THRESHOLD = 4 * 1024 * 1024;

/** The rate (and so the ETA) is the average over about this much of the recent past. */
const RATE_WINDOW_MS = 3000;

/** Where the bar goes: standard error, or a fake terminal in tests. */
export interface ProgressOutput extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface TransferProgress {
  /** Give this to the client's `onProgress`. */
  readonly onProgress: ProgressListener;
  /** Draws the final state and ends the line; call once the transfer ends, however it ends. */
  stop(): void;
}

export interface TransferProgressOptions {
  readonly threshold?: number;
  /** Milliseconds; injectable for tests. */
  readonly now?: () => number;
  /** Redraws per second (cli-progress's `fps`). */
  readonly fps?: number;
}

const QUIET: TransferProgress = { onProgress: () => undefined, stop: () => undefined };

export function transferProgress(label: string, output: ProgressOutput, options: TransferProgressOptions = {}): TransferProgress {
  if (output.isTTY !== true) return QUIET;
  const threshold = options.threshold ?? PROGRESS_THRESHOLD;
  const now = options.now ?? Date.now;
  const rate = new RateMeter(now);
  let bar: SingleBar | undefined;
  let stopped = false;
  let last: Progress = { bytes: 0 };

  const payload = (progress: Progress, final = false) => {
    const bytesPerSecond = final ? rate.overall() : rate.perSecond();
    const remaining = progress.total === undefined ? undefined : Math.max(0, progress.total - progress.bytes);
    return {
      label,
      done: formatBytes(progress.bytes),
      size: progress.total === undefined ? "?" : formatBytes(progress.total),
      rate: bytesPerSecond === undefined ? "-" : `${formatBytes(bytesPerSecond)}/s`,
      timeLeft: remaining === undefined || bytesPerSecond === undefined || bytesPerSecond === 0 ? "-" : formatDuration(remaining / bytesPerSecond),
    };
  };

  return {
    onProgress: (progress) => {
      if (stopped) return;
      last = progress;
      rate.sample(progress.bytes);
      if (bar === undefined) {
        if ((progress.total ?? progress.bytes) < threshold) return;
        const known = progress.total !== undefined;
        bar = new SingleBar({
          stream: output,
          format: known ? "{label} [{bar}] {percentage}% | {done}/{size} | {rate} | ETA {timeLeft}" : "{label} {done} | {rate}",
          barsize: 30,
          hideCursor: false,
          linewrap: false,
          fps: options.fps ?? 10,
        });
        bar.start(progress.total ?? progress.bytes, progress.bytes, payload(progress));
        return;
      }
      if (progress.total === undefined) bar.setTotal(progress.bytes);
      bar.update(progress.bytes, payload(progress));
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      if (bar === undefined) return;
      bar.update(last.bytes, payload(last, true));
      bar.stop();
    },
  };
}

/** Bytes per second over the last few seconds. */
class RateMeter {
  private readonly samples: Array<{ at: number; bytes: number }> = [];
  private first: { at: number; bytes: number } | undefined;

  constructor(private readonly now: () => number) {}

  sample(bytes: number): void {
    const at = this.now();
    this.first ??= { at, bytes: 0 };
    this.samples.push({ at, bytes });
    // Keep one sample older than the window, so the window is always covered.
    while (this.samples.length > 2 && (this.samples[1]?.at ?? at) <= at - RATE_WINDOW_MS) this.samples.shift();
  }

  perSecond(): number | undefined {
    const first = this.samples[0];
    const latest = this.samples.at(-1);
    if (first === undefined || latest === undefined || latest.at - first.at < 200) return undefined;
    return ((latest.bytes - first.bytes) * 1000) / (latest.at - first.at);
  }

  /** The average since the first sample: the summary shown when the transfer ends. */
  overall(): number | undefined {
    const latest = this.samples.at(-1);
    if (this.first === undefined || latest === undefined || latest.at <= this.first.at) return undefined;
    return (latest.bytes * 1000) / (latest.at - this.first.at);
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `1536` → `1.5 KiB`; three significant digits. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${UNITS[unit] ?? ""}`;
}

/** `75` → `1m15s`. */
export function formatDuration(seconds: number): string {
  const total = Math.ceil(seconds);
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m${String(total % 60).padStart(2, "0")}s`;
  return `${Math.floor(total / 3600)}h${String(Math.floor((total % 3600) / 60)).padStart(2, "0")}m`;
}
