import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  COUNTER_NAMES,
  backendOfKey,
  mergeTally,
  zeroCounters,
  type AccessIndex,
  type AccessRecord,
  type AccessUsage,
  type CoordinationHealth,
  type Coordinator,
  type CounterName,
  type Counters,
  type Lease,
  type Tallies,
  type TallyMerge,
} from "./coordinator.js";
import { LocalAccessIndex, LocalCoordinator } from "./local-coordinator.js";

export interface RedisCoordinatorOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…`. */
  readonly url: string;
  /** Every key this vault keeps in Redis starts with it. */
  readonly keyPrefix: string;
  readonly leaseTtlMs: number;
  readonly logger: Logger;
  /** How long start-up waits for Redis before serving alone (it keeps trying afterwards). */
  readonly connectWaitMs?: number;
}

/** Counters and access records are sent to Redis in batches this often. */
const FLUSH_INTERVAL_MS = 200;
/** Access records held for Redis while it is unreachable (the oldest are dropped past it). */
const MAX_PENDING_RECORDS = 100_000;
/** Access records per script call. */
const RECORD_BATCH = 500;
/** A command Redis has not answered in this long fails, so a stuck Redis never holds up a request. */
const COMMAND_TIMEOUT_MS = 2000;

/** A Lua script run by its SHA-1, sent whole only when Redis does not know it yet. */
class LuaScript {
  readonly #sha: string;
  constructor(readonly source: string) {
    this.#sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const values = args.map(String);
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...values);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...values);
    }
  }
}

// KEYS: lease, fence counter. ARGV: ttl ms. The new fence when granted, else 0.
const CLAIM = new LuaScript(`
local fence = redis.call('INCR', KEYS[2])
if redis.call('SET', KEYS[1], fence, 'NX', 'PX', ARGV[1]) then return fence end
return 0`);
// KEYS: lease. ARGV: fence, ttl ms. 1 when still held (and renewed).
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`);
// KEYS: lease. ARGV: fence, channel, resource.
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`);
// KEYS: window. ARGV: window ms. {count, ms until reset}.
const RATE_HIT = new LuaScript(`
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {count, ttl}`);
// KEYS: sizes hash, lru zset, usage hash. ARGV: mode ("record" | "seed"), then (backend, key, size, at)*.
// "seed" leaves entries the index already has as they are.
const RECORD = new LuaScript(`
local seed = ARGV[1] == 'seed'
for i = 2, #ARGV, 4 do
  local backend, key, size, at = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local old = redis.call('HGET', KEYS[1], key)
  if not (seed and old) then
    redis.call('HSET', KEYS[1], key, size)
    local previous = redis.call('ZSCORE', KEYS[2], key)
    if (not previous) or tonumber(previous) < at then redis.call('ZADD', KEYS[2], at, key) end
    if not old then
      redis.call('HINCRBY', KEYS[3], 'entries', 1)
      redis.call('HINCRBY', KEYS[3], 'entries:' .. backend, 1)
      old = 0
    end
    local delta = size - tonumber(old)
    if delta ~= 0 then
      redis.call('HINCRBY', KEYS[3], 'bytes', delta)
      redis.call('HINCRBY', KEYS[3], 'bytes:' .. backend, delta)
    end
  end
end
return 1`);
// KEYS: tallies hash. ARGV: (field, value, merge)*: "add" adds the value, "latest" keeps the larger.
const TALLY = new LuaScript(`
for i = 1, #ARGV, 3 do
  if ARGV[i + 2] == 'add' then
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    local old = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
    if (not old) or old < tonumber(ARGV[i + 1]) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  end
end
return 1`);
/** A per-backend figure's field in the tallies hash (backend names hold no newline). */
const tallyField = (backend: string, name: string): string => `${backend}\n${name}`;
// KEYS: sizes hash, lru zset, usage hash. ARGV: backend, key.
const FORGET = new LuaScript(`
local old = redis.call('HGET', KEYS[1], ARGV[2])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'entries', -1)
redis.call('HINCRBY', KEYS[3], 'entries:' .. ARGV[1], -1)
redis.call('HINCRBY', KEYS[3], 'bytes', -tonumber(old))
redis.call('HINCRBY', KEYS[3], 'bytes:' .. ARGV[1], -tonumber(old))
return 1`);

/**
 * Replicas on one bucket coordinated through one Redis:
 *
 * - **Fill leases**: `SET lease:<resource> <fence> NX PX <ttl>`, renewed by the holder every
 *   third of the TTL while its download runs, released with a PUBLISH that wakes the replicas
 *   waiting for it (which also poll, so a holder that died is noticed within a quarter TTL of
 *   its lease expiring). The fence comes from one `INCR`, so a later holder's is larger.
 * - **Counters**: one hash, `HINCRBY` in batches; per-backend figures (`tally`) another, in one
 *   script per batch (sums, or the larger value).
 * - **Rate-limit windows**: `INCR` + `PEXPIRE` per window, in one script.
 * - **Access index**: a sorted set of keys by last use, a hash of sizes and a hash of totals
 *   (overall and per backend) kept by the same scripts, so `cache stats` is two reads however
 *   large the cache, and eviction reads the oldest entries without listing the bucket.
 *
 * When Redis is unreachable, each call falls back to a `LocalCoordinator`: the replica serves
 * alone (leases granted locally, its own rate limits and counters), says so in its log and
 * `/health`, and sends the counts and access records it kept once Redis is back.
 */
export class RedisCoordinator implements Coordinator {
  readonly shared = true;
  readonly access: RedisAccessIndex;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly #local = new LocalCoordinator();
  readonly #logger: Logger;
  readonly #prefix: string;
  readonly #leaseTtlMs: number;
  readonly #channel: string;
  readonly #where: string;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #leaseTimers = new Set<NodeJS.Timeout>();
  #pendingCounts: Counters = zeroCounters();
  /** Per-backend figures not yet in Redis, merged: field (`tallyField`) → value and merge. */
  #pendingTallies = new Map<string, { value: number; how: TallyMerge }>();
  #flushTimer: NodeJS.Timeout | undefined;
  #up = false;
  /** Undefined until the first connection attempt settles (the first "down" is said at start). */
  #said: "up" | "down" | undefined;
  #lastError: string | undefined;
  #closed = false;

  private constructor(options: RedisCoordinatorOptions) {
    this.#logger = options.logger;
    this.#prefix = options.keyPrefix;
    this.#leaseTtlMs = options.leaseTtlMs;
    this.#channel = `${options.keyPrefix}released`;
    this.#where = redactedRedisUrl(options.url);
    const settings = {
      lazyConnect: true,
      // Fail fast while disconnected: a request falls back to serving alone instead of waiting.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: COMMAND_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
    };
    this.#redis = new Redis(options.url, settings);
    // The subscriber resubscribes by itself after a reconnect, so it keeps an offline queue.
    this.#subscriber = new Redis(options.url, { ...settings, enableOfflineQueue: true, commandTimeout: undefined });
    this.access = new RedisAccessIndex(this.#redis, options.keyPrefix, () => this.#up);
    this.#redis.on("ready", () => this.#setUp(true));
    this.#redis.on("close", () => this.#setUp(false));
    this.#redis.on("error", (error: Error) => {
      this.#lastError = error.message;
    });
    this.#subscriber.on("error", () => undefined);
    this.#subscriber.on("message", (_channel: string, resource: string) => this.#wake(resource));
  }

  /** Connects (waiting a little for Redis); a replica whose Redis is unreachable starts alone. */
  static async connect(options: RedisCoordinatorOptions): Promise<RedisCoordinator> {
    const coordinator = new RedisCoordinator(options);
    await coordinator.#start(options.connectWaitMs ?? 3000);
    return coordinator;
  }

  async #start(waitMs: number): Promise<void> {
    const ready = Promise.all([this.#redis.connect(), this.#subscriber.connect().then(() => this.#subscriber.subscribe(this.#channel))]);
    ready.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), waitMs)));
    const outcome = await Promise.race([ready.then(() => "ready" as const, () => "failed" as const), timeout]);
    clearTimeout(timer);
    if (outcome !== "ready" && this.#said === undefined) this.#say("down");
    this.#flushTimer = setInterval(() => void this.#flush(), FLUSH_INTERVAL_MS);
    this.#flushTimer.unref();
  }

  health(): CoordinationHealth {
    return { mode: "redis", redis: this.#up ? "up" : "down" };
  }

  describe(): string {
    return `with the other replicas through Redis at ${this.#where} (key prefix ${JSON.stringify(this.#prefix)}, fill lease ${this.#leaseTtlMs} ms)`;
  }

  async claim(resource: string): Promise<Lease | undefined> {
    if (!this.#up) return this.#local.claimNow(resource);
    const key = this.#leaseKey(resource);
    let fence: number;
    try {
      fence = Number(await CLAIM.run(this.#redis, [key, `${this.#prefix}fence`], [this.#leaseTtlMs]));
    } catch (error) {
      this.#failed(error);
      return this.#local.claimNow(resource);
    }
    if (fence === 0) return undefined;
    return this.#lease(resource, key, fence);
  }

  async released(resource: string, signal?: AbortSignal): Promise<void> {
    if (!this.#up || this.#closed) return;
    const key = this.#leaseKey(resource);
    await new Promise<void>((resolve) => {
      const waiters = this.#waiters.get(resource) ?? new Set<() => void>();
      this.#waiters.set(resource, waiters);
      const done = (): void => {
        clearInterval(poll);
        signal?.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiters.get(resource) === waiters) this.#waiters.delete(resource);
        resolve();
      };
      waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
      // The release message can be missed (a reconnect) and a dead holder sends none: poll too.
      const check = (): void => {
        if (!this.#up) return done();
        this.#redis.exists(key).then(
          (count) => {
            if (count === 0) done();
          },
          () => done(),
        );
      };
      const poll = setInterval(check, Math.max(50, Math.min(1000, Math.floor(this.#leaseTtlMs / 4))));
      poll.unref();
      check();
    });
  }

  count(name: CounterName, delta = 1): void {
    this.#local.count(name, delta);
    this.#pendingCounts[name] += delta;
  }

  async counters(): Promise<Counters> {
    await this.#flush();
    if (!this.#up) return this.#local.countersNow();
    try {
      const stored = await this.#redis.hgetall(`${this.#prefix}counters`);
      const totals = zeroCounters();
      for (const name of COUNTER_NAMES) totals[name] = Number(stored[name] ?? 0) + this.#pendingCounts[name];
      return totals;
    } catch (error) {
      this.#failed(error);
      return this.#local.countersNow();
    }
  }

  tally(backend: string, name: string, value: number, how: TallyMerge): void {
    this.#local.tally(backend, name, value, how);
    this.#pendTally(tallyField(backend, name), value, how);
  }

  #pendTally(field: string, value: number, how: TallyMerge): void {
    this.#pendingTallies.set(field, { value: mergeTally(this.#pendingTallies.get(field)?.value, value, how), how });
  }

  async tallies(): Promise<Tallies> {
    await this.#flush();
    if (!this.#up) return this.#local.talliesNow();
    try {
      const stored = await this.#redis.hgetall(`${this.#prefix}tallies`);
      const tallies = new Map<string, Record<string, number>>();
      const add = (field: string, value: number, how: TallyMerge): void => {
        const newline = field.indexOf("\n");
        if (newline === -1) return;
        const backend = field.slice(0, newline);
        const name = field.slice(newline + 1);
        let figures = tallies.get(backend);
        if (figures === undefined) tallies.set(backend, (figures = {}));
        figures[name] = mergeTally(figures[name], value, how);
      };
      for (const [field, value] of Object.entries(stored)) add(field, Number(value), "add");
      // What a failed flush kept for the next one counts too.
      for (const [field, { value, how }] of this.#pendingTallies) add(field, value, how);
      return tallies;
    } catch (error) {
      this.#failed(error);
      return this.#local.talliesNow();
    }
  }

  async rateHit(bucket: string, windowMs: number): Promise<{ count: number; resetInMs: number }> {
    if (!this.#up) return this.#local.rateHitNow(bucket, windowMs);
    try {
      const [count, resetInMs] = (await RATE_HIT.run(this.#redis, [`${this.#prefix}rate:${bucket}`], [windowMs])) as [number, number];
      return { count: Number(count), resetInMs: Number(resetInMs) };
    } catch (error) {
      this.#failed(error);
      return this.#local.rateHitNow(bucket, windowMs);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#flushTimer);
    for (const timer of this.#leaseTimers) clearInterval(timer);
    for (const waiters of this.#waiters.values()) for (const wake of [...waiters]) wake();
    await this.#flush();
    this.#redis.disconnect();
    this.#subscriber.disconnect();
    await this.#local.close();
  }

  #lease(resource: string, key: string, fence: number): Lease {
    let held = true;
    const renew = setInterval(() => {
      RENEW.run(this.#redis, [key], [fence, this.#leaseTtlMs]).then(
        (renewed) => {
          if (Number(renewed) === 1 || !held) return;
          held = false;
          clearInterval(renew);
          this.#leaseTimers.delete(renew);
          this.#logger.warn({ resource }, "lost a lease to another replica (this one stalled past its expiry); its work will not overwrite the other's");
        },
        (error: unknown) => this.#failed(error),
      );
    }, Math.max(100, Math.floor(this.#leaseTtlMs / 3)));
    renew.unref();
    this.#leaseTimers.add(renew);
    let releasing: Promise<void> | undefined;
    return {
      fence,
      stillHeld: async () => {
        if (!held) return false;
        try {
          return (await this.#redis.get(key)) === String(fence);
        } catch (error) {
          // Redis unreachable: there is no one to lose the lease to that we could know of.
          this.#failed(error);
          return true;
        }
      },
      release: () =>
        (releasing ??= (async () => {
          held = false;
          clearInterval(renew);
          this.#leaseTimers.delete(renew);
          await RELEASE.run(this.#redis, [key], [fence, this.#channel, resource]).catch((error: unknown) => this.#failed(error));
        })()),
    };
  }

  #leaseKey(resource: string): string {
    return `${this.#prefix}lease:${resource}`;
  }

  #wake(resource: string): void {
    const waiters = this.#waiters.get(resource);
    if (waiters === undefined) return;
    for (const wake of [...waiters]) wake();
  }

  async #flush(): Promise<void> {
    if (!this.#up) return;
    const counts = this.#pendingCounts;
    const changed = COUNTER_NAMES.filter((name) => counts[name] !== 0);
    if (changed.length > 0) {
      this.#pendingCounts = zeroCounters();
      const pipeline = this.#redis.pipeline();
      for (const name of changed) pipeline.hincrby(`${this.#prefix}counters`, name, counts[name]);
      try {
        const results = (await pipeline.exec()) ?? [];
        const failure = results.find(([error]) => error !== null)?.[0];
        if (failure !== undefined && failure !== null) throw failure;
      } catch (error) {
        // Not counted there: kept for the next flush (a partial failure may count some twice).
        for (const name of changed) this.#pendingCounts[name] += counts[name];
        this.#failed(error);
      }
    }
    if (this.#pendingTallies.size > 0) {
      const pending = this.#pendingTallies;
      this.#pendingTallies = new Map();
      try {
        await TALLY.run(this.#redis, [`${this.#prefix}tallies`], [...pending].flatMap(([field, { value, how }]) => [field, value, how]));
      } catch (error) {
        // Kept for the next flush, merged with what arrived meanwhile.
        for (const [field, { value, how }] of pending) this.#pendTally(field, value, how);
        this.#failed(error);
      }
    }
    await this.access.flush().catch((error: unknown) => this.#failed(error));
  }

  #failed(error: unknown): void {
    this.#lastError = error instanceof Error ? error.message : String(error);
    this.#logger.debug({ reason: this.#lastError }, "a Redis command failed");
  }

  #setUp(up: boolean): void {
    if (this.#closed) return;
    this.#up = up;
    if (up) {
      // Waiters polling a Redis that just came back are woken to look again.
      for (const resource of [...this.#waiters.keys()]) this.#wake(resource);
    }
    this.#say(up ? "up" : "down");
  }

  #say(state: "up" | "down"): void {
    if (this.#said === state) return;
    const first = this.#said === undefined;
    this.#said = state;
    if (state === "down") {
      this.#logger.warn(
        { redis: this.#where, reason: this.#lastError ?? "connection closed" },
        "Redis unreachable: this replica serves alone until it is back (downloads are not shared with other replicas; rate limits, statistics and the LRU index are its own)",
      );
    } else if (!first) {
      this.#logger.info({ redis: this.#where }, "Redis reachable again: coordinating with the other replicas");
    }
  }
}

/** The shared access index: see `RedisCoordinator`. Records are batched; reads flush first. */
export class RedisAccessIndex implements AccessIndex {
  /** This replica's own view, for when Redis cannot be read. */
  readonly #local = new LocalAccessIndex();
  #pending = new Map<string, { size: number; at: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly up: () => boolean,
  ) {}

  get #keys(): [string, string, string] {
    return [`${this.prefix}sizes`, `${this.prefix}lru`, `${this.prefix}usage`];
  }

  record(key: string, size: number, at: number): void {
    this.#local.record(key, size, at);
    this.#pending.delete(key);
    this.#pending.set(key, { size, at });
    if (this.#pending.size > MAX_PENDING_RECORDS) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
  }

  async forget(key: string): Promise<void> {
    this.#pending.delete(key);
    await this.#local.forget(key);
    if (!this.up()) return;
    await FORGET.run(this.redis, this.#keys, [backendOfKey(key), key]);
  }

  async usage(): Promise<AccessUsage> {
    if (!this.up()) return this.#local.usageNow();
    try {
      await this.flush();
      const stored = await this.redis.hgetall(`${this.prefix}usage`);
      const byBackend = new Map<string, { entries: number; bytes: number }>();
      for (const [field, value] of Object.entries(stored)) {
        const match = /^(entries|bytes):(.*)$/s.exec(field);
        if (match === null) continue;
        const [, what, backend] = match as unknown as [string, "entries" | "bytes", string];
        const current = byBackend.get(backend) ?? { entries: 0, bytes: 0 };
        current[what] = Number(value);
        byBackend.set(backend, current);
      }
      for (const [backend, usage] of byBackend) if (usage.entries <= 0) byBackend.delete(backend);
      return { entries: Number(stored["entries"] ?? 0), bytes: Number(stored["bytes"] ?? 0), byBackend };
    } catch {
      return this.#local.usageNow();
    }
  }

  async oldest(limit: number): Promise<AccessRecord[]> {
    await this.flush();
    const ranked = await this.redis.zrange(`${this.prefix}lru`, "0", String(limit - 1), "WITHSCORES");
    const keys: string[] = [];
    const times: number[] = [];
    for (let i = 0; i + 1 < ranked.length; i += 2) {
      keys.push(ranked[i] as string);
      times.push(Number(ranked[i + 1]));
    }
    if (keys.length === 0) return [];
    const sizes = await this.redis.hmget(`${this.prefix}sizes`, ...keys);
    return keys.map((key, i) => ({ key, size: Number(sizes[i] ?? 0), at: times[i] ?? 0 }));
  }

  async lastUsed(keys: readonly string[]): Promise<Array<number | undefined>> {
    if (!this.up() || keys.length === 0) return this.#local.lastUsedNow(keys);
    try {
      await this.flush();
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.zscore(`${this.prefix}lru`, key);
      const results = (await pipeline.exec()) ?? [];
      return keys.map((_key, i) => {
        const [error, score] = results[i] ?? [null, null];
        return error === null && typeof score === "string" ? Number(score) : undefined;
      });
    } catch {
      return this.#local.lastUsedNow(keys);
    }
  }

  async isSeeded(): Promise<boolean> {
    if (!this.up()) return this.#local.isSeeded();
    return (await this.redis.exists(`${this.prefix}seeded`)) === 1;
  }

  async seed(records: readonly AccessRecord[], done: boolean): Promise<void> {
    await this.#local.seed(records, done);
    for (let start = 0; start < records.length; start += RECORD_BATCH) {
      const batch = records.slice(start, start + RECORD_BATCH);
      await RECORD.run(this.redis, this.#keys, ["seed", ...batch.flatMap(({ key, size, at }) => [backendOfKey(key), key, size, at])]);
    }
    if (done) await this.redis.set(`${this.prefix}seeded`, String(Date.now()));
  }

  /** Sends the records kept since the last flush; kept for the next one if Redis fails. */
  async flush(): Promise<void> {
    if (this.#pending.size === 0 || !this.up()) return;
    const pending = this.#pending;
    this.#pending = new Map();
    const entries = [...pending];
    try {
      for (let start = 0; start < entries.length; start += RECORD_BATCH) {
        const batch = entries.slice(start, start + RECORD_BATCH);
        await RECORD.run(this.redis, this.#keys, ["record", ...batch.flatMap(([key, { size, at }]) => [backendOfKey(key), key, size, at])]);
      }
    } catch (error) {
      for (const [key, record] of pending) if (!this.#pending.has(key)) this.#pending.set(key, record);
      throw error;
    }
  }
}

/** The Redis URL without its credentials, for logs. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username !== "" || parsed.password !== "") {
      parsed.username = "";
      parsed.password = "";
    }
    return parsed.href;
  } catch {
    return "(an unparsable URL)";
  }
}
