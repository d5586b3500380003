/**
 * What `cache warm` shows while it runs, and the summary at the end.
 *
 * - On a terminal (standard error): one progress bar — items done of those known so far (the
 *   total grows as index documents name more files), bytes downloaded, the rate over the last
 *   few seconds, and an ETA from the pace of items so far — with each download and each failure
 *   printed above it as it ends.
 * - Otherwise: one plain line per item on standard output (`fetched`, `cached`, `failed`), none
 *   with `--quiet`; never a control character.
 */
import { MultiBar } from "cli-progress";
import type { CliIo } from "../cli-io.js";
import { formatBytes, formatDuration, type ProgressOutput } from "../transfer-progress.js";
import type { ItemResult, Problem, WarmListener, WarmSummary } from "./warm-run.js";

export interface WarmDisplay extends WarmListener {
  /** Draws the last state and lets go of the terminal. */
  stop(): void;
}

export interface WarmDisplayOptions {
  readonly quiet: boolean;
  /** Milliseconds; injectable for tests. */
  readonly now?: () => number;
  readonly fps?: number;
}

/** The rate is the average over about this much of the recent past. */
const RATE_WINDOW_MS = 3000;

export function warmDisplay(io: CliIo, stderr: ProgressOutput, options: WarmDisplayOptions): WarmDisplay {
  return stderr.isTTY === true ? new TerminalDisplay(stderr, options) : new LineDisplay(io, options.quiet);
}

class LineDisplay implements WarmDisplay {
  constructor(
    private readonly io: CliIo,
    private readonly quiet: boolean,
  ) {}

  planned(): void {}
  bytes(): void {}
  stop(): void {}

  done(result: ItemResult): void {
    if (!this.quiet) this.io.out(itemLine(result));
  }

  failed(problem: Problem): void {
    if (!this.quiet) this.io.out(`failed   ${problem.label}: ${problem.reason}`);
  }
}

class TerminalDisplay implements WarmDisplay {
  readonly #bars: MultiBar;
  readonly #bar: ReturnType<MultiBar["create"]>;
  readonly #now: () => number;
  readonly #quiet: boolean;
  readonly #started: number;
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  #total = 0;
  #done = 0;
  #bytes = 0;
  #stopped = false;

  constructor(stderr: ProgressOutput, options: WarmDisplayOptions) {
    this.#now = options.now ?? Date.now;
    this.#quiet = options.quiet;
    this.#started = this.#now();
    this.#bars = new MultiBar({
      stream: stderr,
      format: "warming [{bar}] {value}/{total} items | {bytes} | {rate} | ETA {timeLeft}",
      barsize: 30,
      hideCursor: false,
      linewrap: false,
      clearOnComplete: false,
      fps: options.fps ?? 10,
    });
    this.#bar = this.#bars.create(0, 0, this.#payload());
  }

  planned(): void {
    this.#total++;
    this.#redraw();
  }

  bytes(count: number): void {
    this.#bytes += count;
    this.#samples.push({ at: this.#now(), bytes: this.#bytes });
    const horizon = this.#now() - RATE_WINDOW_MS;
    // Keep one sample older than the window, so the window is always covered.
    while (this.#samples.length > 2 && (this.#samples[1]?.at ?? 0) <= horizon) this.#samples.shift();
    this.#redraw();
  }

  done(result: ItemResult): void {
    this.#done++;
    if (result.served === "fetched" && !this.#quiet) this.#bars.log(`${itemLine(result)}\n`);
    this.#redraw();
  }

  failed(problem: Problem, item: boolean): void {
    // Failures of inputs (a package not on the index) are no planned item; those of items are.
    if (item) this.#done++;
    this.#bars.log(`failed   ${problem.label}: ${problem.reason}\n`);
    this.#redraw();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#bar.setTotal(this.#total);
    this.#bar.update(this.#done, this.#payload(true));
    // A redraw first: it prints the lines logged since the last one (stopping does not).
    this.#bars.update();
    this.#bars.stop();
  }

  #redraw(): void {
    if (this.#stopped) return;
    this.#bar.setTotal(this.#total);
    this.#bar.update(this.#done, this.#payload());
  }

  #payload(final = false): Record<string, string> {
    const rate = final ? this.#overallRate() : this.#recentRate();
    return {
      bytes: formatBytes(this.#bytes),
      rate: rate === undefined ? "-" : `${formatBytes(rate)}/s`,
      timeLeft: final ? "0s" : this.#timeLeft(),
    };
  }

  #recentRate(): number | undefined {
    const first = this.#samples[0];
    const latest = this.#samples.at(-1);
    if (first === undefined || latest === undefined || latest.at - first.at < 200) return undefined;
    return ((latest.bytes - first.bytes) * 1000) / (latest.at - first.at);
  }

  #overallRate(): number | undefined {
    const elapsed = this.#now() - this.#started;
    return elapsed <= 0 ? undefined : (this.#bytes * 1000) / elapsed;
  }

  /** Items left at the pace of the items so far. */
  #timeLeft(): string {
    const elapsed = this.#now() - this.#started;
    if (this.#done === 0 || elapsed <= 0) return "-";
    return formatDuration(((this.#total - this.#done) * elapsed) / this.#done / 1000);
  }
}

function itemLine(result: ItemResult): string {
  return `${result.served === "fetched" ? "fetched" : "cached "}  ${formatBytes(result.bytes).padStart(10)}  ${result.label}`;
}

/** The summary printed at the end: counts and sizes, then every failure and skipped input with its reason. */
export function summaryLines(summary: WarmSummary): string[] {
  const total = summary.fetched.length + summary.cached.length + summary.failures.length;
  const sum = (results: readonly ItemResult[]): number => results.reduce((bytes, result) => bytes + result.bytes, 0);
  const lines = [
    `${summary.interrupted ? "interrupted after" : "warmed"} ${total} ${total === 1 ? "item" : "items"} in ${formatDuration(summary.elapsedMs / 1000)}: ` +
      `${summary.fetched.length} fetched (${formatBytes(sum(summary.fetched))}), ` +
      `${summary.cached.length} already cached (${formatBytes(sum(summary.cached))}), ` +
      `${summary.failures.length} failed`,
  ];
  if (summary.skipped.length > 0) {
    lines.push(`skipped ${summary.skipped.length} ${summary.skipped.length === 1 ? "input" : "inputs"} (not for the vault):`);
    for (const problem of summary.skipped) lines.push(`  ${problem.label}: ${problem.reason}`);
  }
  if (summary.failures.length > 0) {
    lines.push("failed:");
    for (const problem of summary.failures) lines.push(`  ${problem.label}: ${problem.reason}`);
  }
  return lines;
}
