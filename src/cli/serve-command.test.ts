import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VaultError } from "../core/errors.js";
import type { VaultConfig } from "../config/schema.js";
import type { CliIo } from "./cli-io.js";
import { runCli } from "./program.js";
import type { RunningVault, ServeDeps } from "./serve-command.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "serve-command-test-"));
  await writeFile(join(dir, "vault.yml"), "log_level: silent\nhttp_port: 0\nshutdown_timeout: 5s\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  readonly io: CliIo;
  readonly errors: string[];
  readonly exits: number[];
  readonly signals: EventEmitter;
  readonly started: VaultConfig[];
  closes: number;
  deps(start: (config: VaultConfig) => Promise<RunningVault>): ServeDeps;
  /** Resolves on the next exit() call. */
  nextExit(): Promise<number>;
}

function harness(): Harness {
  const errors: string[] = [];
  const exits: number[] = [];
  const waiting: Array<(code: number) => void> = [];
  const signals = new EventEmitter();
  const h: Harness = {
    io: { out: () => undefined, err: (line) => errors.push(line), env: {}, cwd: dir, now: () => new Date() },
    errors,
    exits,
    signals,
    started: [],
    closes: 0,
    deps: (start) => ({
      loadStartVault: async () => async (config) => {
        h.started.push(config);
        return start(config);
      },
      exit: (code) => {
        exits.push(code);
        waiting.shift()?.(code);
      },
      signals,
    }),
    nextExit: () => new Promise((resolve) => waiting.push(resolve)),
  };
  return h;
}

const argv = (...args: string[]) => ["node", "artifact-vault", "serve", "--config", "vault.yml", ...args];

function vault(h: Harness, close: () => Promise<void> = async () => undefined): RunningVault {
  return {
    url: "http://127.0.0.1:1",
    close: () => {
      h.closes++;
      return close();
    },
  };
}

void describe("serve command", () => {
  void it("passes the loaded config (with flag overrides) to startVault", async () => {
    const h = harness();
    assert.equal(await runCli(argv("--host", "::1", "--port", "9999"), h.io, h.deps(async () => vault(h))), 0);
    assert.equal(h.started[0]?.http_host, "::1");
    assert.equal(h.started[0]?.http_port, 9999);
    assert.equal(h.started[0]?.shutdown_timeout_ms, 5000);
  });

  void it("SIGTERM closes once and exits 0", async () => {
    const h = harness();
    await runCli(argv(), h.io, h.deps(async () => vault(h)));
    const exited = h.nextExit();
    h.signals.emit("SIGTERM", "SIGTERM");
    assert.equal(await exited, 0);
    assert.equal(h.closes, 1);
  });

  void it("a second signal during the drain exits 1 at once", async () => {
    const h = harness();
    let finishDrain = () => {};
    const draining = new Promise<void>((resolve) => (finishDrain = resolve));
    await runCli(argv(), h.io, h.deps(async () => vault(h, () => draining)));
    h.signals.emit("SIGINT", "SIGINT");
    const forced = h.nextExit();
    h.signals.emit("SIGINT", "SIGINT");
    assert.equal(await forced, 1);
    assert.equal(h.closes, 1);
    finishDrain();
  });

  void it("a signal while starting stops the vault as soon as it is up", async () => {
    const h = harness();
    let up = (_: RunningVault) => {};
    const starting = new Promise<RunningVault>((resolve) => (up = resolve));
    let called = () => {};
    const startCalled = new Promise<void>((resolve) => (called = resolve));
    const run = runCli(
      argv(),
      h.io,
      h.deps(() => {
        called();
        return starting;
      }),
    );
    await startCalled;
    h.signals.emit("SIGTERM", "SIGTERM");
    assert.equal(h.closes, 0);
    const exited = h.nextExit();
    up(vault(h));
    assert.equal(await run, 0);
    assert.equal(await exited, 0);
    assert.equal(h.closes, 1);
  });

  void it("a failing close exits 1", async () => {
    const h = harness();
    await runCli(argv(), h.io, h.deps(async () => vault(h, async () => Promise.reject(new Error("disk gone")))));
    const exited = h.nextExit();
    h.signals.emit("SIGTERM", "SIGTERM");
    assert.equal(await exited, 1);
  });

  const failures: Array<[string, Error, number, RegExp]> = [
    ["an unavailable storage type", new VaultError("not_supported", "the s3 storage driver is not available yet"), 2, /^error: the s3 storage driver is not available yet$/],
    ["a bad store config", new VaultError("bad_request", 'unknown storage type "x"'), 2, /unknown storage type/],
    ["a port in use", Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" }), 1, /^error: cannot listen on 127\.0\.0\.1:0: the address is already in use/],
    ["anything else", new Error("boom"), 1, /^error: the vault failed to start: boom$/],
  ];
  for (const [what, error, code, message] of failures) {
    void it(`start failure: ${what} → exit ${code}`, async () => {
      const h = harness();
      assert.equal(await runCli(argv(), h.io, h.deps(() => Promise.reject(error))), code);
      assert.match(h.errors.join("\n"), message);
      assert.equal(h.signals.listenerCount("SIGTERM"), 0, "signal handlers are removed after a failed start");
    });
  }

  void it("a config error exits 2 before anything starts", async () => {
    const h = harness();
    await writeFile(join(dir, "bad.yml"), "http_prot: 1\n");
    const code = await runCli(["node", "artifact-vault", "serve", "--config", "bad.yml"], h.io, h.deps(async () => vault(h)));
    assert.equal(code, 2);
    assert.deepEqual(h.errors, ['error: bad.yml: unknown key "http_prot" (did you mean "http_port"?)']);
    assert.equal(h.started.length, 0);
  });
});
