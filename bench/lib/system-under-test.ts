/** A running HTTP server a benchmark measures: the vault, or a reference system such as nginx. */
export interface SystemUnderTest {
  /** Short label for tables: "vault", "nginx". */
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  /** Headers every request sends (the vault's `Authorization`; harmless for nginx). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Processes whose CPU and memory are this system's, summed (nginx: its workers, not the master;
   * a vault with `workers: N`: its primary and its N worker processes).
   */
  readonly pids: readonly number[];
  /**
   * A process the system relies on that is measured apart from it (the S3 server behind a vault
   * on S3): wrk and the large transfers report its CPU share next to the system's own.
   */
  readonly backing?: { readonly name: string; readonly pids: readonly number[] };
  /** The server's log file (shown when something fails). */
  readonly logFile: string;
  stop(): Promise<void>;
}

/** The object API path of a key, encoded the way the source design's client encodes it. */
export function objectPath(key: string): string {
  return `/objects/${encodeURIComponent(key)}`;
}
