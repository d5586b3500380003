/**
 * Failed authentication, counted per client address: past `limit` failures in a minute, the
 * address gets 429 instead of 401 until the minute is over — token guessing costs a minute per
 * `limit` tries, whatever route it aims at (object API, cache administration, proxy routes with
 * `auth.proxy: token`). Requests with a valid token are never counted here, so a client with a
 * good token is limited only by its token's own budget, even from an address that failed a lot.
 *
 * Fixed one-minute windows per address; at most `maxAddresses` are remembered (the oldest
 * window goes first), so a flood from many addresses costs bounded memory.
 */
export interface FailedAuthThrottleOptions {
  /** Failures per address per minute before 429 (`rate_limit.per_ip_per_minute`). */
  readonly limit: number;
  readonly maxAddresses?: number;
  readonly clock?: () => number;
}

const WINDOW_MS = 60_000;

export class FailedAuthThrottle {
  readonly #limit: number;
  readonly #maxAddresses: number;
  readonly #clock: () => number;
  /** By address, oldest window first. */
  readonly #windows = new Map<string, { readonly startedAt: number; failures: number }>();

  constructor(options: FailedAuthThrottleOptions) {
    this.#limit = options.limit;
    this.#maxAddresses = options.maxAddresses ?? 100_000;
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * Counts a failure of `address`. Returns the seconds it must wait when it is over the limit
   * (the request then gets 429), or undefined while it may still be told 401.
   */
  failed(address: string): number | undefined {
    const now = this.#clock();
    let window = this.#windows.get(address);
    if (window === undefined || now - window.startedAt >= WINDOW_MS) {
      this.#windows.delete(address);
      window = { startedAt: now, failures: 0 };
      this.#windows.set(address, window);
      this.#forgetOldest(now);
    }
    window.failures++;
    if (window.failures <= this.#limit) return undefined;
    return Math.max(1, Math.ceil((window.startedAt + WINDOW_MS - now) / 1000));
  }

  #forgetOldest(now: number): void {
    for (const [address, window] of this.#windows) {
      if (this.#windows.size <= this.#maxAddresses && now - window.startedAt < WINDOW_MS) return;
      this.#windows.delete(address);
    }
  }
}
