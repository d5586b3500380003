/**
 * A Go checksum database as static files (golang.org/x/mod/sumdb's protocol), built here with its
 * own key, for tests: `latest` (the signed tree head), `lookup/<module>@<version>` for every
 * record, and the tiles a client reads (`tile/8/<L>/<N>[.p/<W>]`, `tile/8/data/...`). Written to
 * a directory for nginx, or kept as a map for a scripted origin.
 *
 * The hashing and tiling are written here from the protocol's description, apart from the
 * vault's own code: the go command checks these files itself in the end-to-end test, and the
 * vault must agree with both.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

const HEIGHT = 8;
const WIDTH = 2 ** HEIGHT;

export interface SumdbRecord {
  readonly path: string;
  readonly version: string;
  /** h1 of the zip, h1 of the go.mod. */
  readonly zipHash: string;
  readonly modHash: string;
}

/** `X` → `!x`, as the protocol writes module paths and versions in URLs. */
export function escapeCase(text: string): string {
  return text.replace(/[A-Z]/g, (upper) => `!${upper.toLowerCase()}`);
}

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const leafHash = (record: Uint8Array): Buffer => sha256(Buffer.from([0]), record);
const nodeHash = (left: Uint8Array, right: Uint8Array): Buffer => sha256(Buffer.from([1]), left, right);

export class ChecksumDatabase {
  readonly name: string;
  /** The verifier key, as GOSUMDB and the vault's `sumdb` take it: `<name>+<hash>+<key>`. */
  readonly verifierKey: string;
  readonly #privateKey: KeyObject;
  readonly #keyHash: Buffer;
  readonly #records: Array<{ record: SumdbRecord; text: Buffer }> = [];
  /** Every file published so far (older partial tiles and tree heads stay, as on a real log). */
  readonly files = new Map<string, Buffer>();

  constructor(name: string) {
    this.name = name;
    const { publicKey, privateKey } = generateKeyPairSync("ed25519");
    const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
    const key = Buffer.concat([Buffer.from([1]), raw]);
    this.#keyHash = sha256(Buffer.from(`${name}\n`), key).subarray(0, 4);
    this.verifierKey = `${name}+${this.#keyHash.toString("hex")}+${key.toString("base64")}`;
    this.#privateKey = privateKey;
  }

  get size(): number {
    return this.#records.length;
  }

  /** Appends records and republishes: a new tree head, every lookup, the tiles of the grown tree. */
  add(...records: SumdbRecord[]): void {
    for (const record of records) {
      const text = Buffer.from(`${record.path} ${record.version} ${record.zipHash}\n${record.path} ${record.version}/go.mod ${record.modHash}\n`);
      this.#records.push({ record, text });
    }
    this.#publish();
  }

  /** The signed tree head a lookup carries now. */
  signedTree(): Buffer {
    return this.files.get("latest") ?? Buffer.alloc(0);
  }

  /** Writes every file below `dir` (for nginx). */
  async writeTo(dir: string): Promise<void> {
    for (const [path, bytes] of this.files) {
      const file = join(dir, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, bytes);
    }
  }

  /** A signed note of `text` (a key name and hash, then the Ed25519 signature), optionally signed by another key. */
  signNote(text: string, privateKey: KeyObject = this.#privateKey): Buffer {
    const signature = Buffer.concat([this.#keyHash, sign(null, Buffer.from(text), privateKey)]);
    return Buffer.from(`${text}\n— ${this.name} ${signature.toString("base64")}\n`);
  }

  #publish(): void {
    const leaves = this.#records.map(({ text }) => leafHash(text));
    const size = leaves.length;
    const root = rootOf(leaves, 0, size);
    const tree = this.signNote(`go.sum database tree\n${size}\n${root.toString("base64")}\n`);
    this.files.set("latest", tree);
    this.#records.forEach(({ record, text }, id) => {
      this.files.set(`lookup/${escapeCase(record.path)}@${escapeCase(record.version)}`, Buffer.concat([Buffer.from(`${id}\n`), text, Buffer.from("\n"), tree]));
    });
    // Hashes of each tree level, complete subtrees only; tile level L holds level 8·L.
    const levels: Buffer[][] = [leaves];
    for (let level = 1; (levels[level - 1]?.length ?? 0) >= 2; level++) {
      const below = levels[level - 1] ?? [];
      levels.push(Array.from({ length: Math.floor(below.length / 2) }, (_, i) => nodeHash(below[2 * i] ?? Buffer.alloc(0), below[2 * i + 1] ?? Buffer.alloc(0))));
    }
    for (let tileLevel = 0; tileLevel * HEIGHT < levels.length; tileLevel++) {
      const hashes = levels[tileLevel * HEIGHT] ?? [];
      for (let index = 0; index * WIDTH < hashes.length; index++) {
        const slice = hashes.slice(index * WIDTH, (index + 1) * WIDTH);
        this.files.set(tilePath(String(tileLevel), index, slice.length), Buffer.concat(slice));
      }
    }
    for (let index = 0; index * WIDTH < size; index++) {
      const records = this.#records.slice(index * WIDTH, (index + 1) * WIDTH);
      const data = records.map(({ text }, i) => Buffer.concat([Buffer.from(`${index * WIDTH + i}\n`), text, Buffer.from("\n")]));
      this.files.set(tilePath("data", index, records.length), Buffer.concat(data));
    }
  }
}

/** RFC 6962's tree hash of leaves [lo, hi): split at the largest power of two below the count. */
function rootOf(leaves: readonly Buffer[], lo: number, hi: number): Buffer {
  if (hi - lo === 1) return leaves[lo] ?? Buffer.alloc(0);
  let k = 1;
  while (k * 2 < hi - lo) k *= 2;
  return nodeHash(rootOf(leaves, lo, lo + k), rootOf(leaves, lo + k, hi));
}

function tilePath(level: string, index: number, width: number): string {
  let n = index;
  let digits = String(n % 1000).padStart(3, "0");
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    digits = `x${String(n % 1000).padStart(3, "0")}/${digits}`;
  }
  return `tile/${HEIGHT}/${level}/${digits}${width === WIDTH ? "" : `.p/${width}`}`;
}
