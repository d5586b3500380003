/**
 * The web UI end to end: the built CLI (`artifact-vault serve`, one worker) serves `/ui/`, Debian's
 * Chromium (driven by playwright-core, headless; never a downloaded browser) uses it with the
 * keyboard and the mouse, and a local origin (whose downloads can be held mid-body) is the
 * upstream. What the page shows is checked against the vault's own API; every page is checked
 * with axe-core (WCAG 2 A and AA); the page talks to no other origin and breaks no rule of its
 * Content-Security-Policy.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { writeTokensFile } from "../../src/auth/tokens-file.js";
import { rawRequest, type RawResponse } from "../support/http.js";
import { OriginServer, sha256 } from "../support/origin-server.js";
import { tokenRecords } from "../support/test-vault.js";
import { requireTool } from "../support/tools.js";
import { spawnVault, type VaultProcess } from "../support/vault-process.js";

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

interface AxeViolation {
  readonly id: string;
  readonly help: string;
  readonly nodes: ReadonlyArray<{ readonly target: readonly string[] }>;
}

/**
 * axe-core's WCAG 2 A/AA rules over the page as it is now: no violation allowed. axe comes in as
 * an init script of the browser context (`context.addInitScript`): the page's own policy
 * (`script-src 'self'`) refuses an inline `<script>`, as it must, so `page.addScriptTag` cannot
 * bring it.
 */
async function assertAccessible(page: Page, where: string): Promise<void> {
  const violations = await page.evaluate<AxeViolation[]>(
    "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] }, resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))",
  );
  const described = violations.map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).join("; ")})`);
  assert.deepEqual(described, [], `accessibility violations on ${where}`);
}

/** Waits until an element matching `selector` shows `text` (Playwright's own polling, no sleeps). */
async function waitForText(page: Page, selector: string, text: string | RegExp, timeout = 10_000): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor({ timeout });
}

interface EntryJson {
  readonly key: string;
  readonly last_access: string | null;
}

test("the web UI, in Chromium", { timeout: 180_000 }, async (t: TestContext) => {
  const chromiumPath = requireTool(t, "chromium");
  if (chromiumPath === undefined) return;

  const dir = await mkdtemp(join(tmpdir(), "vault-e2e-ui-"));
  const origin = await new OriginServer().start();
  let vault: VaultProcess | undefined;
  let browser: Browser | undefined;
  try {
    const { records, tokens } = await tokenRecords([
      { name: "admin", scopes: ["read", "write", "delete", "admin"] },
      { name: "reader", scopes: ["read"] },
    ]);
    const adminToken = tokens["admin"] ?? "";
    const readerToken = tokens["reader"] ?? "";
    const tokensFile = join(dir, "tokens.json");
    await writeTokensFile(tokensFile, records);
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      [
        "http_host: 127.0.0.1",
        "http_port: 0",
        "log_level: info",
        // One process (the downloads page would list every worker's downloads with more).
        "workers: 1",
        `storage: {stores: {local: {type: filesystem, config: {root_path: ${JSON.stringify(join(dir, "data"))}}}}, main: local}`,
        `auth: {tokens_file: ${JSON.stringify(tokensFile)}}`,
        "backends:",
        `  - {type: http, name: files, config: {prefix: /files/, base_url: "${origin.url}/dist", timeout: 30, retries: 1}}`,
        `  - {type: pypi, name: pypi, config: {prefix: /pypi/, index_url: "http://alice:s3cr3t@127.0.0.1:9/simple"}}`,
      ].join("\n"),
    );
    vault = await spawnVault(config);
    const vaultUrl = vault.url;
    const api = (path: string, token = adminToken, method = "GET"): Promise<RawResponse> =>
      rawRequest(vaultUrl, path, { method, headers: { authorization: `Bearer ${token}` } });

    browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"], headless: true });
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, acceptDownloads: true });
    await context.addInitScript({ content: AXE_SOURCE });
    const page = await context.newPage();
    const requested: string[] = [];
    const cspErrors: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy/i.test(message.text())) cspErrors.push(message.text());
    });

    const small = randomBytes(10 * 1024);
    origin.files.set("/dist/pkg/small-1.0.bin", { body: small });

    await t.test("sign-in by keyboard only: a wrong token is refused, the admin token opens the dashboard", async () => {
      await page.goto(`${vaultUrl}/ui`);
      assert.equal(new URL(page.url()).pathname, "/ui/", "/ui redirects to /ui/");
      await page.waitForFunction("document.activeElement !== null && document.activeElement.id === 'token'");
      await assertAccessible(page, "the sign-in page");
      await page.keyboard.type("avt_not-a-real-token");
      await page.keyboard.press("Enter");
      await waitForText(page, "[role=alert]", /not accepted/);
      await assertAccessible(page, "the sign-in page with its error");
      await page.keyboard.press("Control+A");
      await page.keyboard.type(adminToken);
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate("document.activeElement.textContent"), "Sign in", "Tab reaches the button");
      await page.keyboard.press("Enter");
      await waitForText(page, "h1", "Dashboard");
      // The heading takes the focus in an effect after the page renders: wait for it, not for a frame.
      await page.waitForFunction("document.activeElement?.tagName === 'H1'", undefined, { timeout: 10_000 }).catch(() => undefined);
      assert.equal(await page.evaluate("document.activeElement.tagName"), "H1", "the page's heading takes the focus");
    });

    await t.test("the dashboard shows the hit ratio and bytes of known traffic, and follows new traffic without a reload", async () => {
      // One miss, then three hits: 75 %, 30 KiB served from the cache, 10 KiB fetched.
      for (let i = 0; i < 4; i++) assert.equal((await rawRequest(vaultUrl, "/files/pkg/small-1.0.bin")).status, 200);
      await waitForText(page, "[data-figure=hit-ratio]", "75.0 %");
      await waitForText(page, "[data-figure=requests]", "3 hits, 1 miss");
      await waitForText(page, "[data-figure=bytes-from-cache]", "30.0 KiB");
      await waitForText(page, "[data-figure=bytes-from-upstream]", "10.0 KiB");
      await waitForText(page, "tr[data-backend=files]", /OK/);
      await assertAccessible(page, "the dashboard");

      await page.evaluate("window.__sameDocument = true");
      assert.equal((await rawRequest(vaultUrl, "/files/pkg/small-1.0.bin")).status, 200);
      await waitForText(page, "[data-figure=requests]", "4 hits, 1 miss");
      await waitForText(page, "[data-figure=hit-ratio]", "80.0 %");
      assert.equal(await page.evaluate("window.__sameDocument === true"), true, "updated in place, not reloaded");
    });

    await t.test("a download in progress shows its bytes and waiting clients, and leaves when it completes", async () => {
      const big = randomBytes(2 * 1024 * 1024);
      let resume!: () => void;
      const until = new Promise<void>((resolve) => (resume = resolve));
      origin.files.set("/dist/pkg/big-2.0.bin", { body: big, pauseAfter: { bytes: 256 * 1024, until } });
      const clients = [rawRequest(vaultUrl, "/files/pkg/big-2.0.bin"), rawRequest(vaultUrl, "/files/pkg/big-2.0.bin")];
      try {
        await page.click("nav >> text=Downloads");
        await waitForText(page, "h1", "Downloads in progress");
        const row = "tr[data-key='files/pkg/big-2.0.bin']";
        await waitForText(page, `${row} [data-figure=waiters]`, /^2$/);
        await waitForText(page, `${row} [data-figure=bytes]`, /KiB of 2\.00 MiB \(\d+(\.\d)? %\)/);
        await waitForText(page, `${row} [data-figure=rate]`, /B\/s$/, 5000);
        await assertAccessible(page, "the downloads page");
      } finally {
        resume();
      }
      for (const response of await Promise.all(clients)) {
        assert.equal(response.status, 200);
        assert.equal(sha256(response.body), sha256(big));
      }
      await page.locator("tr[data-key='files/pkg/big-2.0.bin']").waitFor({ state: "detached" });
      await waitForText(page, "[data-figure=fill-count]", "No downloads in progress.");
    });

    await t.test("cache entries are browsed by backend and prefix; a purge asks first: cancel keeps the entry, confirm removes it", async () => {
      await page.click("nav >> text=Cache");
      await waitForText(page, "h1", "Cached artifacts");
      await page.selectOption("#cache-backend", "files");
      await page.fill("#cache-prefix", "files/pkg/");
      await page.click("form >> text=List");
      const row = "tr[data-key='files/pkg/small-1.0.bin']";
      await waitForText(page, row, "10.0 KiB");
      await waitForText(page, row, /s ago/);
      await waitForText(page, row, /fresh/);
      await waitForText(page, "tr[data-key='files/pkg/big-2.0.bin']", "2.00 MiB");
      const listed = (await api("/admin/cache/entries?prefix=files/pkg/small")).json<{ entries: EntryJson[] }>().entries;
      assert.equal(typeof listed[0]?.last_access, "string", "the admin API says when it was last used");
      await assertAccessible(page, "the cache page");

      await page.click("button[aria-label='Purge files/pkg/small-1.0.bin']");
      const dialog = page.locator("dialog[open]");
      await dialog.waitFor();
      // The dialog moves the focus once it is open: wait for that, not for a frame.
      await page.waitForFunction("document.activeElement?.textContent === 'Cancel'", undefined, { timeout: 10_000 }).catch(() => undefined);
      assert.equal(await page.evaluate("document.activeElement.textContent"), "Cancel", "the dialog's safe choice has the focus");
      await assertAccessible(page, "the purge dialog");
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "detached" });
      assert.equal((await api("/admin/cache/entries?prefix=files/pkg/small")).json<{ entries: EntryJson[] }>().entries.length, 1, "cancelled: still cached");

      await page.click("button[aria-label='Purge files/pkg/small-1.0.bin']");
      await dialog.waitFor();
      await dialog.locator("button", { hasText: /^Purge$/ }).click();
      await waitForText(page, "[role=status]", "Purged files/pkg/small-1.0.bin");
      await page.locator(row).waitFor({ state: "detached" });
      assert.equal((await api("/admin/cache/entries?prefix=files/pkg/small")).json<{ entries: EntryJson[] }>().entries.length, 0, "purged");
    });

    await t.test("objects: upload through the file input, download, delete after confirming", async () => {
      await page.click("nav >> text=Objects");
      await waitForText(page, "h1", "Objects");
      const contents = randomBytes(1024 * 1024 + 17);
      await page.setInputFiles("#upload-file", { name: "notes.bin", mimeType: "application/octet-stream", buffer: contents });
      await page.fill("#upload-key", "team/notes.bin");
      await page.click("form >> text=Upload");
      const row = "tr[data-key='team/notes.bin']";
      await page.locator(row).waitFor();
      await waitForText(page, "[role=status]", /Uploaded team\/notes\.bin/);
      const stored = await api("/objects/team/notes.bin");
      assert.equal(stored.status, 200);
      assert.equal(sha256(stored.body), sha256(contents), "the uploaded bytes are the file's");
      await assertAccessible(page, "the objects page");

      const [download] = await Promise.all([page.waitForEvent("download"), page.click("button[aria-label='Download team/notes.bin']")]);
      assert.equal(download.suggestedFilename(), "notes.bin");
      const saved = await download.path();
      assert.equal(sha256(await readFile(saved)), sha256(contents), "the downloaded bytes are the object's");

      await page.click("button[aria-label='Delete team/notes.bin']");
      const dialog = page.locator("dialog[open]");
      await dialog.waitFor();
      await dialog.locator("button", { hasText: /^Delete$/ }).click();
      await page.locator(row).waitFor({ state: "detached" });
      assert.equal((await api("/objects/team/notes.bin")).status, 404, "deleted");
    });

    await t.test("the backends page gives a pip snippet for the vault's address, with no token and no upstream password", async () => {
      await page.click("nav >> text=Backends");
      await waitForText(page, "h1", "Backends and client setup");
      const pypi = page.locator("section[data-backend=pypi]");
      await pypi.locator("pre", { hasText: "index-url" }).first().waitFor();
      const text = (await pypi.textContent()) ?? "";
      assert.match(text, new RegExp(`index-url = ${vaultUrl.replace(/[.:/]/g, "\\$&")}/pypi/simple/`));
      assert.match(text, /http:\/\/127\.0\.0\.1:9\/simple/, "the upstream, without its credentials");
      const page_ = (await page.content()) + text;
      for (const secret of [adminToken, readerToken, "s3cr3t", "alice"]) assert.ok(!page_.includes(secret), `the page never shows ${secret.slice(0, 6)}…`);
      await assertAccessible(page, "the backends page");
    });

    await t.test("a read-only token lists objects but is told it may not purge", async () => {
      assert.equal((await rawRequest(vaultUrl, "/objects/shared/readme.txt", { method: "PUT", headers: { authorization: `Bearer ${adminToken}` }, body: "hello" })).status, 200);
      await page.click("text=Sign out");
      await page.locator("#token").waitFor();
      await page.fill("#token", readerToken);
      await page.keyboard.press("Enter");
      await waitForText(page, "h1", "Backends and client setup"); // where it was, which a read token may see
      await page.click("nav >> text=Objects");
      await waitForText(page, "h1", "Objects");
      await page.locator("tr[data-key='shared/readme.txt']").waitFor();

      await page.click("nav >> text=Cache");
      await waitForText(page, "h1", "Cached artifacts");
      await page.selectOption("#cache-backend", "files");
      await page.click("text=Purge prefix…");
      const dialog = page.locator("dialog[open]");
      await dialog.waitFor();
      await dialog.locator("button", { hasText: /^Purge all$/ }).click();
      await waitForText(page, "[role=alert]", /Not allowed to purge cache entries: your token lacks the 'admin' scope/);
      await assertAccessible(page, "the cache page refusing a read-only token");
      assert.equal((await api("/admin/cache/entries?prefix=files/")).json<{ entries: EntryJson[] }>().entries.length, 1, "nothing was purged");
    });

    const elsewhere = requested.filter((url) => !url.startsWith(`${vaultUrl}/`) && !url.startsWith("blob:") && !url.startsWith("data:"));
    assert.deepEqual(elsewhere, [], "the page asks nothing of another origin");
    assert.ok(requested.some((url) => url.startsWith(`${vaultUrl}/admin/`)), "the page used the vault's API");
    assert.deepEqual(cspErrors, [], "nothing on the page breaks its Content-Security-Policy");
  } finally {
    await browser?.close();
    if (vault !== undefined) {
      vault.kill();
      await vault.exited();
    }
    await origin.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
