/**
 * Linux /proc readings for the processes under test: CPU time (was the server saturated?),
 * resident memory now and at its peak, and child pids (nginx's workers, a vault's worker processes).
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const CLOCK_TICKS = (() => {
  const result = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const ticks = Number.parseInt(result.stdout ?? "", 10);
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/** Fields of /proc/<pid>/stat after the `(comm)` part, which may itself contain spaces. */
function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds the process has used so far (all its threads). */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (fields === undefined) return 0;
  // After "(comm) ": state=0 ppid=1 ... utime=11 stime=12 (0-based).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Direct children of `pid` (e.g. nginx's worker under its master). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields !== undefined && Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children;
}

/**
 * Every process below `pid` (children, their children, ...), from one pass over /proc: e.g. the
 * worker processes a vault with `workers: N` forks (node:cluster), whose CPU and memory are the
 * vault's as much as its primary's.
 */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields === undefined) continue;
    const parent = Number(fields[1]);
    let list = children.get(parent);
    if (list === undefined) children.set(parent, (list = []));
    list.push(Number(entry));
  }
  const found: number[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const child of children.get(next) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found;
}

/** The process's command line as `ps` shows it (nginx sets it to "nginx: worker process"). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes, or undefined. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
      readFileSync(`/proc/${pid}/status`, "utf8"),
    );
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Tracks the peak resident set of a set of processes over an interval: resets the kernel's
 * high-water mark at the start (`echo 5 > /proc/<pid>/clear_refs`, Linux ≥ 4.0), samples VmRSS
 * every `intervalMs`, and at the end takes the larger of the samples and VmHWM — so a spike
 * between two samples still counts, and what happened before the interval does not.
 */
export class PeakRssMeter {
  private readonly peaks = new Map<number, number>();
  /** VmRSS when `start` was called, summed over the pids. */
  private startBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private hwmReset = true;

  constructor(
    private readonly pids: readonly number[],
    private readonly intervalMs = 50,
  ) {}

  start(): void {
    for (const pid of this.pids) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, "5");
      } catch {
        this.hwmReset = false;
      }
      const rss = statusBytes(pid, "VmRSS") ?? 0;
      this.peaks.set(pid, rss);
      this.startBytes += rss;
    }
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const rss = statusBytes(pid, "VmRSS") ?? 0;
      if (rss > (this.peaks.get(pid) ?? 0)) this.peaks.set(pid, rss);
    }
  }

  /** Stops sampling; returns the peak in bytes (summed over the pids: their peaks, each). */
  stop(): { readonly bytes: number; readonly startBytes: number; readonly method: string } {
    clearInterval(this.timer);
    this.sample();
    let total = 0;
    for (const pid of this.pids) {
      let peak = this.peaks.get(pid) ?? 0;
      if (this.hwmReset) peak = Math.max(peak, statusBytes(pid, "VmHWM") ?? 0);
      total += peak;
    }
    return {
      bytes: total,
      startBytes: this.startBytes,
      method: this.hwmReset
        ? `VmHWM (reset at start) and VmRSS every ${this.intervalMs} ms`
        : `VmRSS every ${this.intervalMs} ms`,
    };
  }
}
