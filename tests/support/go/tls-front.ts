/**
 * TLS in front of a vault, as a deployment puts it there: an HTTPS server on 127.0.0.1:0 with a
 * self-signed certificate for 127.0.0.1 (made with the `openssl` CLI) that passes every request
 * on to the vault as it came. For clients that send credentials only over HTTPS (the go command).
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface TlsFront {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** The certificate to trust (PEM), e.g. as SSL_CERT_FILE. */
  readonly certificateFile: string;
  close(): Promise<void>;
}

export async function startTlsFront(dir: string, backend: string): Promise<TlsFront> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keyFile = join(dir, "tls-key.pem");
  const certificateFile = join(dir, "tls-cert.pem");
  const key = privateKey.export({ type: "pkcs8", format: "pem" });
  await writeFile(keyFile, key, { mode: 0o600 });
  await execFileAsync(
    "openssl",
    ["req", "-new", "-x509", "-sha256", "-key", keyFile, "-out", certificateFile, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    { timeout: 30_000 },
  );
  const cert = await readFile(certificateFile);
  const target = new URL(backend);
  const server: Server = createServer({ key, cert }, (incoming, outgoing) => {
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: { ...incoming.headers, "x-forwarded-proto": "https" } },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on("error", () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    certificateFile,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
