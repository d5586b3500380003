import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cli-serve-"));
  await writeFile(join(dir, "vault.yml"), "http_host: 127.0.0.1\nhttp_port: 0\ncache_dir: ./data\nlog_level: info\n");
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Spawns `serve`, collecting output; resolves `listening` with the URL from the "listening" log line. */
function start(args: readonly string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["HOST", "PORT", "LOG_LEVEL", "STORAGE_CONFIG", "STORAGE_NAME", "AUTH_TOKENS_FILE"]) delete env[name];
  const child = spawn(process.execPath, [CLI, "serve", ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const listening = new Promise<string | undefined>((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then(() => resolve(undefined));
  });
  return { child, exited, listening, output: () => output };
}

void describe("artifact-vault serve", () => {
  void it("--port beats the file; SIGTERM drains and exits 0", async () => {
    const probe: Server = createServer();
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, "close");

    const vault = start(["--config", "vault.yml", "--port", String(port)]);
    try {
      const url = await vault.listening;
      assert.equal(url, `http://127.0.0.1:${port}`, vault.output());
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 200);
      vault.child.kill("SIGTERM");
      assert.equal(await vault.exited, 0, vault.output());
    } finally {
      vault.child.kill("SIGKILL");
    }
  });

  void it("a port in use exits 1 with a clear message", async () => {
    const blocker: Server = createServer();
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    try {
      const port = (blocker.address() as AddressInfo).port;
      const vault = start(["--config", "vault.yml", "--port", String(port)]);
      assert.equal(await vault.exited, 1, vault.output());
      assert.match(vault.output(), new RegExp(`error: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    } finally {
      blocker.close();
    }
  });
});
