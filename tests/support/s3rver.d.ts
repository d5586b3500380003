/** The parts of s3rver (an S3 server for tests, CommonJS, untyped) that `s3-server.ts` uses. */
declare module "s3rver" {
  import type { AddressInfo } from "node:net";

  export interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory?: string;
    configureBuckets?: Array<{ name: string }>;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
  }

  /** A Koa application. */
  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
    /** Koa's middleware stack; the router is the last one. */
    middleware: unknown[];
    store: unknown;
    context: { store: unknown };
  }
}
