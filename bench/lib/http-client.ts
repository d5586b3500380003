/**
 * The harness's own HTTP client (undici, keep-alive): populating stores with many concurrent
 * small PUTs, and timing single requests where a per-request latency is the figure (list pages).
 */
import { Pool } from "undici";
import type { SystemUnderTest } from "./system-under-test.js";

export class BenchClient {
  private readonly pool: Pool;

  constructor(
    private readonly system: SystemUnderTest,
    connections = 64,
  ) {
    this.pool = new Pool(system.baseUrl, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  async request(
    method: "GET" | "PUT" | "DELETE",
    path: string,
    body?: Uint8Array | string,
  ): Promise<{ status: number; body: Buffer }> {
    const response = await this.pool.request({
      method,
      path,
      headers: { ...this.system.headers, ...(body === undefined ? {} : { "content-type": "application/octet-stream" }) },
      ...(body === undefined ? {} : { body }),
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(chunk as Buffer);
    return { status: response.statusCode, body: Buffer.concat(chunks) };
  }

  /** `GET path` answered 2xx, parsed as JSON; throws with the body otherwise. */
  async getJson<T>(path: string): Promise<T> {
    const { status, body } = await this.request("GET", path);
    if (status < 200 || status >= 300) {
      throw new Error(`${this.system.name} GET ${path}: HTTP ${status} ${body.toString("utf8").slice(0, 300)}`);
    }
    return JSON.parse(body.toString("utf8")) as T;
  }

  /** PUTs `count` objects, `concurrency` at a time; throws on the first non-2xx answer. */
  async putMany(
    count: number,
    pathOf: (index: number) => string,
    bodyOf: (index: number) => Uint8Array | string,
    concurrency = 64,
    onProgress?: (done: number) => void,
  ): Promise<void> {
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        const path = pathOf(index);
        const { status, body } = await this.request("PUT", path, bodyOf(index));
        if (status < 200 || status >= 300) {
          throw new Error(`${this.system.name} PUT ${path}: HTTP ${status} ${body.toString("utf8").slice(0, 300)}`);
        }
        done++;
        if (onProgress !== undefined && done % 1000 === 0) onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
