/** What `cache warm` is given: its parsed options, and its seams (the command and its action share them). */
import type { ProgressOutput } from "../transfer-progress.js";

export interface WarmDeps {
  /** Where the progress bar goes (standard error). */
  readonly stderr?: ProgressOutput;
  /** What `-` reads (standard input). */
  readonly stdin?: NodeJS.ReadableStream;
  /** Where SIGINT/SIGTERM arrive: they stop the run (with a summary of what was done). */
  readonly signals?: Pick<NodeJS.EventEmitter, "once" | "off">;
}

export interface WarmOptions {
  readonly url?: string;
  readonly apiKey?: string;
  readonly requirements?: readonly string[];
  readonly packageLock?: readonly string[];
  readonly goSum?: readonly string[];
  readonly cargoLock?: readonly string[];
  readonly gemfileLock?: readonly string[];
  readonly images?: readonly string[];
  readonly image?: readonly string[];
  readonly apt?: readonly string[];
  readonly suite?: string;
  readonly component: readonly string[];
  readonly arch: readonly string[];
  readonly platform?: readonly string[];
  readonly pypiPrefix: string;
  readonly npmPrefix: string;
  readonly ociPrefix: string;
  readonly aptPrefix: string;
  readonly goPrefix: string;
  readonly cargoPrefix: string;
  readonly rubygemsPrefix: string;
  readonly concurrency: number;
  readonly retries: number;
  readonly quiet?: boolean;
}
