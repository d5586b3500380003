/**
 * Runs in a worker thread (piscina): parsing and re-serialising a packument of tens of MB takes
 * long enough to stall every other request if it ran on the event loop.
 */
import { rewriteManifest, rewritePackument, tarballSourcesOf, type RewrittenPackument, type TarballSource } from "./packument-rewrite.js";
import type { PackageName } from "./npm-paths.js";

export interface PackumentTask {
  readonly kind: "packument" | "manifest" | "sources";
  readonly json: Uint8Array;
  readonly name: PackageName;
  readonly registryBase: string;
}

export type PackumentResult =
  | { readonly kind: "rewritten"; readonly value: RewrittenPackument }
  | { readonly kind: "sources"; readonly value: Record<string, TarballSource> };

export default function runPackumentTask(task: PackumentTask): PackumentResult {
  const json = Buffer.from(task.json.buffer, task.json.byteOffset, task.json.byteLength).toString("utf8");
  switch (task.kind) {
    case "packument":
      return { kind: "rewritten", value: rewritePackument(json, task.name, task.registryBase) };
    case "manifest":
      return { kind: "rewritten", value: rewriteManifest(json, task.name) };
    case "sources":
      return { kind: "sources", value: tarballSourcesOf(json, task.name, task.registryBase) };
  }
}
