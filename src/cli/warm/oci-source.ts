/**
 * Image references → the vault's registry API (`{prefix}<name>/manifests/<tag or digest>`, with
 * `/v2/` as the prefix by default): the manifest, asked for with the media types container
 * clients accept; for an index (or a Docker manifest list) every platform's manifest — or only
 * those of `--platform` — by digest; then each image's config and layer blobs
 * (`{prefix}<name>/blobs/<digest>`). Layers a manifest says live elsewhere (`urls`,
 * non-distributable) are not the registry's to serve and are left out.
 */
import { formatPlatform, platformMatches, type ImageReference, type Platform } from "./image-reference.js";
import { vaultUrlFor } from "./vault-urls.js";
import type { WarmContext, WarmSource } from "./warm-run.js";

/** The manifest types docker, containerd and skopeo accept (the vault caches a tag once per such set). */
export const MANIFEST_ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Descriptor {
  readonly digest?: unknown;
  readonly mediaType?: unknown;
  readonly platform?: { readonly os?: unknown; readonly architecture?: unknown; readonly variant?: unknown };
  readonly urls?: unknown;
}

interface ManifestJson {
  readonly manifests?: readonly Descriptor[];
  readonly config?: Descriptor;
  readonly layers?: readonly Descriptor[];
  /** Docker schema 1. */
  readonly fsLayers?: ReadonlyArray<{ readonly blobSum?: unknown }>;
}

export interface ImageInput {
  readonly text: string;
  readonly image: ImageReference;
}

export function ociSource(images: readonly ImageInput[], prefix: string, platforms: readonly Platform[], base: URL): WarmSource {
  return {
    run: async (context) => {
      await Promise.all(images.map(({ text, image }) => warmManifest(context, base, prefix, platforms, image.name, image.reference, text, true)));
    },
  };
}

async function warmManifest(context: WarmContext, base: URL, prefix: string, platforms: readonly Platform[], name: string, reference: string, label: string, top: boolean): Promise<void> {
  const at = (path: string): URL => vaultUrlFor(base, `${prefix}${name}/${path}`);
  const document = await context.document(at(`manifests/${reference}`), `image: ${label} manifest`, { headers: { accept: MANIFEST_ACCEPT } });
  if (document === undefined) return;
  let manifest: ManifestJson;
  try {
    manifest = JSON.parse(document.body.toString("utf8")) as ManifestJson;
    if (typeof manifest !== "object" || manifest === null) throw new Error("not a JSON object");
  } catch (error) {
    context.failed(`image: ${label}`, `the manifest is not JSON: ${(error as Error).message}`);
    return;
  }
  const index: readonly Descriptor[] | undefined = Array.isArray(manifest.manifests) ? (manifest.manifests as readonly Descriptor[]) : undefined;
  if (index !== undefined) {
    if (!top) {
      context.failed(`image: ${label}`, "an index inside an index");
      return;
    }
    const children = index.filter((child) => typeof child.digest === "string");
    const chosen = platforms.length === 0 ? children : children.filter((child) => platformMatches(child.platform, platforms));
    if (chosen.length === 0) {
      const offered = children.map((child) => describePlatform(child.platform)).join(", ");
      context.failed(`image: ${label}`, `no manifest for ${platforms.map(formatPlatform).join(" or ")} (the index has ${offered === "" ? "none" : offered})`);
      return;
    }
    await Promise.all(chosen.map((child) => warmManifest(context, base, prefix, platforms, name, String(child.digest), `${label} (${describePlatform(child.platform)})`, false)));
    return;
  }
  const blobs: string[] = [];
  for (const descriptor of [manifest.config, ...(manifest.layers ?? [])]) {
    if (descriptor === undefined || typeof descriptor.digest !== "string") continue;
    const foreign = Array.isArray(descriptor.urls) || (typeof descriptor.mediaType === "string" && /foreign|nondistributable/.test(descriptor.mediaType));
    if (!foreign) blobs.push(descriptor.digest);
  }
  for (const layer of manifest.fsLayers ?? []) if (typeof layer.blobSum === "string") blobs.push(layer.blobSum);
  if (blobs.length === 0) {
    context.failed(`image: ${label}`, "the manifest names no config or layers");
    return;
  }
  for (const digest of blobs) context.artifact(at(`blobs/${digest}`), `image: ${label} blob ${shortDigest(digest)}`);
}

function describePlatform(platform: Descriptor["platform"]): string {
  if (platform === undefined) return "no platform";
  const parts = [platform.os, platform.architecture, platform.variant].filter((part): part is string => typeof part === "string" && part !== "");
  return parts.length === 0 ? "no platform" : parts.join("/");
}

function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return `${digest.slice(0, colon + 1)}${digest.slice(colon + 1, colon + 13)}`;
}
