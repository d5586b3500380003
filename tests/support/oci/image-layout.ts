/**
 * Writes OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/…`) from deterministic
 * inputs, for tests that push images with skopeo and pull them back through a registry or the
 * vault. The same inputs always give the same bytes, so the same digests: layers are ustar
 * archives built here (mtime 0, uid 0) and gzipped by node:zlib, big layers are seeded
 * AES-CTR keystream, and every JSON document is serialised once, the way it is stored.
 *
 * One layout holds any number of tagged images and indexes (`index.json` entries carry
 * `org.opencontainers.image.ref.name`), so `oci:DIR:TAG` names each one for skopeo.
 *
 * skopeo 1.9 (containers/image 5.23) only resolves `oci:DIR:TAG` to an `index.json` entry of an
 * OCI media type: Docker schema 2 manifests and manifest lists are skipped ("no descriptor found
 * for reference"), and relabelling them as OCI in `index.json` breaks the copy. So `save()` also
 * writes each Docker-format entry in skopeo's `dir:` format under `DIR/skopeo-dir/TAG`
 * (hard links to the same blobs), and `reference(tag)` names whichever skopeo can read.
 */
import { createCipheriv, createHash } from "node:crypto";
import { copyFile, link, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

/** `oci`: OCI image manifest / index. `docker`: Docker schema 2 manifest / manifest list. */
export type ImageFormat = "oci" | "docker";

export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
}

export interface Descriptor {
  readonly mediaType: string;
  /** `sha256:<hex>` */
  readonly digest: string;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface LayerInput {
  /** Regular files in the layer (directories on their paths are added). */
  readonly files?: ReadonlyArray<{ readonly path: string; readonly content: string | Uint8Array }>;
  /** Adds `random.bin` with this many seeded pseudo-random (incompressible) bytes. */
  readonly randomBytes?: number;
  /** Seed of the random bytes; defaults to the image's seed and the layer's position. */
  readonly seed?: string;
}

export interface ImageInput {
  /** Default `oci`. */
  readonly format?: ImageFormat;
  /** Default linux/amd64. */
  readonly platform?: Platform;
  /** Makes otherwise equal images differ. Default `"image"`. */
  readonly seed?: string;
  /** Default: one small layer with `/etc/artifact-vault-test` naming the seed and platform. */
  readonly layers?: readonly LayerInput[];
}

export interface IndexInput {
  /** Default `oci`. Every image takes the index's format. */
  readonly format?: ImageFormat;
  /** Default `"index"`. Each image's seed defaults to this seed and its platform. */
  readonly seed?: string;
  /** Default linux/amd64 and linux/arm64/v8. */
  readonly images?: ReadonlyArray<Omit<ImageInput, "format">>;
}

export interface LayerResult extends Descriptor {
  /** `sha256:` of the uncompressed tar, as listed in the config's `rootfs.diff_ids`. */
  readonly diffId: string;
  /** Size of the uncompressed tar. */
  readonly tarSize: number;
}

export interface ImageResult {
  readonly kind: "image";
  readonly format: ImageFormat;
  readonly platform: Platform;
  /** The manifest's descriptor (with `platform`), as an index lists it. */
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly LayerResult[];
  /** The config's and the layers' digests, in that order. */
  readonly blobs: readonly string[];
  /** The manifest exactly as stored (its sha256 is `manifest.digest`). */
  readonly manifestBytes: Buffer;
  readonly configBytes: Buffer;
}

export interface IndexResult {
  readonly kind: "index";
  readonly format: ImageFormat;
  readonly index: Descriptor;
  readonly images: readonly ImageResult[];
  /** The child manifests' digests, in the index's order. */
  readonly manifests: readonly string[];
  /** Every config and layer digest of every child, without repeats. */
  readonly blobs: readonly string[];
  readonly indexBytes: Buffer;
}

export type LayoutEntry = ImageResult | IndexResult;

/** The digest a registry and a client name a manifest or an index by. */
export function topDigest(entry: LayoutEntry): string {
  return entry.kind === "image" ? entry.manifest.digest : entry.index.digest;
}

/** Every manifest digest an entry pushes (the index's first, then its children's). */
export function manifestDigests(entry: LayoutEntry): string[] {
  return entry.kind === "image" ? [entry.manifest.digest] : [entry.index.digest, ...entry.manifests];
}

export const sha256Digest = (bytes: Uint8Array): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

// ------------------------------------------------------------------------------------------------
// tar

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function tarHeader(name: string, size: number, type: "0" | "5", mode: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  let path = name;
  let prefix = "";
  if (Buffer.byteLength(path) > 100) {
    const cut = path.lastIndexOf("/", 154);
    if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100) throw new Error(`tar path too long: ${name}`);
    prefix = path.slice(0, cut);
    path = path.slice(cut + 1);
  }
  header.write(path, 0, 100, "utf8");
  header.write(octal(mode, 8), 100, 8, "ascii");
  header.write(octal(0, 8), 108, 8, "ascii"); // uid
  header.write(octal(0, 8), 116, 8, "ascii"); // gid
  header.write(octal(size, 12), 124, 12, "ascii");
  header.write(octal(0, 12), 136, 12, "ascii"); // mtime: the epoch, for reproducible layers
  header.write("        ", 148, 8, "ascii"); // checksum counts as spaces while it is summed
  header.write(type, 156, 1, "ascii");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  header.write("root", 265, 32, "ascii");
  header.write("root", 297, 32, "ascii");
  header.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + " ", 148, 8, "ascii");
  return header;
}

/** A ustar archive of the files, with a directory entry for every parent, in sorted order. */
export function makeTar(files: ReadonlyArray<{ readonly path: string; readonly content: string | Uint8Array }>): Buffer {
  const entries = new Map<string, Buffer | undefined>();
  for (const file of files) {
    const path = file.path.replace(/^\/+/, "");
    if (path === "" || path.split("/").some((part) => part === "" || part === "." || part === "..")) throw new Error(`bad tar path: ${file.path}`);
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) entries.set(`${parts.slice(0, i).join("/")}/`, undefined);
    entries.set(path, typeof file.content === "string" ? Buffer.from(file.content, "utf8") : Buffer.from(file.content));
  }
  const chunks: Buffer[] = [];
  for (const name of [...entries.keys()].sort()) {
    const content = entries.get(name);
    if (content === undefined) {
      chunks.push(tarHeader(name, 0, "5", 0o755));
      continue;
    }
    chunks.push(tarHeader(name, content.length, "0", 0o644), content);
    const pad = (BLOCK - (content.length % BLOCK)) % BLOCK;
    if (pad > 0) chunks.push(Buffer.alloc(pad));
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(chunks);
}

/** `size` pseudo-random bytes that depend only on `seed` (AES-256-CTR keystream). */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash("sha256").update(`key:${seed}`).digest();
  const iv = createHash("sha256").update(`iv:${seed}`).digest().subarray(0, 16);
  return createCipheriv("aes-256-ctr", key, iv).update(Buffer.alloc(size));
}

// ------------------------------------------------------------------------------------------------
// the layout

const DEFAULT_PLATFORM: Platform = { architecture: "amd64", os: "linux" };
const DEFAULT_INDEX_PLATFORMS: readonly Platform[] = [DEFAULT_PLATFORM, { architecture: "arm64", os: "linux", variant: "v8" }];

const isOciType = (mediaType: string): boolean => mediaType === MediaType.ociManifest || mediaType === MediaType.ociIndex;

const platformName = (platform: Platform): string => [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");

/**
 * An OCI image layout being written. Blobs are written as images are added; `save()` writes
 * `oci-layout` and `index.json` with every tag so far.
 */
export class ImageLayout {
  readonly #tags = new Map<string, Descriptor>();
  readonly #written = new Set<string>();
  readonly #entries = new Map<string, LayoutEntry>();

  private constructor(readonly dir: string) {}

  static async create(dir: string): Promise<ImageLayout> {
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    return new ImageLayout(dir);
  }

  /** Where a blob (`sha256:<hex>`) is stored. */
  blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(":");
    if (algorithm !== "sha256" || hex === undefined) throw new Error(`unsupported digest ${digest}`);
    return join(this.dir, "blobs", algorithm, hex);
  }

  /**
   * The skopeo reference of a tag (after `save()`): `oci:DIR:TAG` for an OCI entry,
   * `dir:DIR/skopeo-dir/TAG` for a Docker one (see the file's comment).
   */
  reference(tag: string): string {
    const descriptor = this.#tags.get(tag);
    if (descriptor === undefined) throw new Error(`no tag ${tag} in ${this.dir}`);
    return isOciType(descriptor.mediaType) ? `oci:${this.dir}:${tag}` : `dir:${this.dirExport(tag)}`;
  }

  /** Where `save()` writes a Docker-format tag in skopeo's `dir:` format. */
  dirExport(tag: string): string {
    return join(this.dir, "skopeo-dir", tag);
  }

  async addImage(input: ImageInput = {}): Promise<ImageResult> {
    const format = input.format ?? "oci";
    const platform = input.platform ?? DEFAULT_PLATFORM;
    const seed = input.seed ?? "image";
    const types =
      format === "oci"
        ? { manifest: MediaType.ociManifest, config: MediaType.ociConfig, layer: MediaType.ociLayerGzip }
        : { manifest: MediaType.dockerManifest, config: MediaType.dockerConfig, layer: MediaType.dockerLayerGzip };
    const layerInputs = input.layers ?? [{}];
    if (layerInputs.length === 0) throw new Error("an image needs at least one layer");

    const layers: LayerResult[] = [];
    for (const [position, layer] of layerInputs.entries()) {
      const files = [...(layer.files ?? [])];
      if (layer.files === undefined && layer.randomBytes === undefined) {
        files.push({ path: "etc/artifact-vault-test", content: `seed=${seed} layer=${position} platform=${platformName(platform)} format=${format}\n` });
      }
      if (layer.randomBytes !== undefined) files.push({ path: "random.bin", content: seededBytes(layer.seed ?? `${seed}/${position}`, layer.randomBytes) });
      const tar = makeTar(files);
      // Incompressible data gains nothing from effort; level 1 keeps big layers quick to make.
      const gzipped = gzipSync(tar, { level: layer.randomBytes !== undefined && layer.randomBytes > 1024 * 1024 ? 1 : 6 });
      const descriptor = await this.#writeBlob(types.layer, gzipped);
      layers.push({ ...descriptor, diffId: sha256Digest(tar), tarSize: tar.length });
    }

    const config = {
      created: "1970-01-01T00:00:00Z",
      architecture: platform.architecture,
      ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
      os: platform.os,
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["/bin/sh"],
        Labels: { "org.artifact-vault.test.seed": seed },
      },
      rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
      history: layers.map((_, position) => ({ created: "1970-01-01T00:00:00Z", created_by: `artifact-vault test layer ${position}` })),
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDescriptor = await this.#writeBlob(types.config, configBytes);

    const manifest = {
      schemaVersion: 2,
      mediaType: types.manifest,
      config: configDescriptor,
      layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDescriptor = { ...(await this.#writeBlob(types.manifest, manifestBytes)), platform };
    return {
      kind: "image",
      format,
      platform,
      manifest: manifestDescriptor,
      config: configDescriptor,
      layers,
      blobs: [configDescriptor.digest, ...layers.map((layer) => layer.digest)],
      manifestBytes,
      configBytes,
    };
  }

  async addIndex(input: IndexInput = {}): Promise<IndexResult> {
    const format = input.format ?? "oci";
    const seed = input.seed ?? "index";
    const imageInputs: ReadonlyArray<Omit<ImageInput, "format">> = input.images ?? DEFAULT_INDEX_PLATFORMS.map((platform) => ({ platform }));
    const images: ImageResult[] = [];
    for (const image of imageInputs) {
      const platform = image.platform ?? DEFAULT_PLATFORM;
      images.push(await this.addImage({ ...image, format, platform, seed: image.seed ?? `${seed}/${platformName(platform)}` }));
    }
    const mediaType = format === "oci" ? MediaType.ociIndex : MediaType.dockerManifestList;
    const index = {
      schemaVersion: 2,
      mediaType,
      manifests: images.map(({ manifest }) => ({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform: manifest.platform })),
    };
    const indexBytes = Buffer.from(JSON.stringify(index));
    return {
      kind: "index",
      format,
      index: await this.#writeBlob(mediaType, indexBytes),
      images,
      manifests: images.map((image) => image.manifest.digest),
      blobs: [...new Set(images.flatMap((image) => image.blobs))],
      indexBytes,
    };
  }

  /** Names an image or index in `index.json` (written by `save()`). */
  tag(tag: string, entry: LayoutEntry): void {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw new Error(`not a valid tag: ${tag}`);
    const { mediaType, digest, size } = entry.kind === "image" ? entry.manifest : entry.index;
    this.#tags.set(tag, { mediaType, digest, size, annotations: { "org.opencontainers.image.ref.name": tag } });
    this.#entries.set(tag, entry);
  }

  /** Writes `oci-layout`, `index.json` and the `dir:` copies of Docker-format entries. */
  async save(): Promise<void> {
    await writeFile(join(this.dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...this.#tags.values()] };
    await writeFile(join(this.dir, "index.json"), JSON.stringify(index));
    for (const [tag, entry] of this.#entries) {
      if (entry.format === "docker") await this.#writeDirExport(tag, entry);
    }
  }

  /** skopeo's `dir:` format: `version`, `manifest.json`, blobs by hex, and `HEX.manifest.json` per list instance. */
  async #writeDirExport(tag: string, entry: LayoutEntry): Promise<void> {
    const target = this.dirExport(tag);
    await rm(target, { recursive: true, force: true });
    await mkdir(target, { recursive: true });
    await writeFile(join(target, "version"), "Directory Transport Version: 1.1\n");
    const place = async (digest: string, name: string): Promise<void> => {
      try {
        await link(this.blobPath(digest), join(target, name));
      } catch {
        await copyFile(this.blobPath(digest), join(target, name));
      }
    };
    const hex = (digest: string): string => digest.slice("sha256:".length);
    if (entry.kind === "image") {
      await place(entry.manifest.digest, "manifest.json");
    } else {
      await place(entry.index.digest, "manifest.json");
      for (const image of entry.images) await place(image.manifest.digest, `${hex(image.manifest.digest)}.manifest.json`);
    }
    const images = entry.kind === "image" ? [entry] : entry.images;
    for (const digest of new Set(images.flatMap((image) => image.blobs))) await place(digest, hex(digest));
  }

  async #writeBlob(mediaType: string, bytes: Buffer): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    if (!this.#written.has(digest)) {
      await writeFile(this.blobPath(digest), bytes);
      this.#written.add(digest);
    }
    return { mediaType, digest, size: bytes.length };
  }
}

// ------------------------------------------------------------------------------------------------
// the usual set

export interface SampleImages {
  readonly layout: ImageLayout;
  /** Tag `oci-image`: one linux/amd64 OCI image with two small layers. */
  readonly ociImage: ImageResult;
  /** Tag `docker-image`: one linux/amd64 Docker schema 2 image with two small layers. */
  readonly dockerImage: ImageResult;
  /** Tag `oci-index`: an OCI index of linux/amd64 and linux/arm64/v8 images. */
  readonly ociIndex: IndexResult;
  /** Tag `docker-list`: a Docker manifest list of linux/amd64 and linux/arm64/v8 images. */
  readonly dockerList: IndexResult;
  /** Tag `big-image` (only with `bigLayerBytes`): an OCI image whose second layer holds that many random bytes. */
  readonly bigImage?: ImageResult;
  /** Every entry by its tag. */
  readonly tags: ReadonlyMap<string, LayoutEntry>;
}

const twoLayers = (name: string): LayerInput[] => [
  { files: [{ path: `etc/${name}/release`, content: `${name} 1.0\n` }] },
  { files: [{ path: `usr/share/${name}/README`, content: `the ${name} test image\n` }, { path: `usr/share/${name}/data.bin`, content: seededBytes(name, 4096) }] },
];

/**
 * Writes one layout with the four kinds of artifact a registry serves (OCI image, Docker image,
 * OCI index, Docker manifest list), each under its own tag, and optionally a big image.
 */
export async function writeSampleImages(dir: string, options: { readonly seed?: string; readonly bigLayerBytes?: number } = {}): Promise<SampleImages> {
  const seed = options.seed ?? "sample";
  const layout = await ImageLayout.create(dir);
  const ociImage = await layout.addImage({ format: "oci", seed: `${seed}/oci-image`, layers: twoLayers(`${seed}-oci`) });
  const dockerImage = await layout.addImage({ format: "docker", seed: `${seed}/docker-image`, layers: twoLayers(`${seed}-docker`) });
  const ociIndex = await layout.addIndex({ format: "oci", seed: `${seed}/oci-index` });
  const dockerList = await layout.addIndex({ format: "docker", seed: `${seed}/docker-list` });
  const tags = new Map<string, LayoutEntry>([
    ["oci-image", ociImage],
    ["docker-image", dockerImage],
    ["oci-index", ociIndex],
    ["docker-list", dockerList],
  ]);
  let bigImage: ImageResult | undefined;
  if (options.bigLayerBytes !== undefined) {
    bigImage = await layout.addImage({ format: "oci", seed: `${seed}/big-image`, layers: [{}, { randomBytes: options.bigLayerBytes }] });
    tags.set("big-image", bigImage);
  }
  for (const [tag, entry] of tags) layout.tag(tag, entry);
  await layout.save();
  return { layout, ociImage, dockerImage, ociIndex, dockerList, ...(bigImage !== undefined ? { bigImage } : {}), tags };
}
