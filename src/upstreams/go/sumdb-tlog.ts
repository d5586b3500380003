import { createHash } from "node:crypto";
import type { TreeHead } from "./sumdb-note.js";

/**
 * The checksum database's transparency log (golang.org/x/mod/sumdb/tlog), pure but for the tile
 * reader it is given:
 *
 * - Leaves are records: hash SHA-256(0x00 ‖ record); an inner node is SHA-256(0x01 ‖ left ‖ right)
 *   (RFC 6962). The hash of `n` leaves splits them at the largest power of two below `n`.
 * - Stored hashes are published in tiles of height 8: tile `tile/8/<L>/<N>` lists the 256 hashes
 *   of tree level 8·L from index 256·N (`tile/8/<L>/<N>.p/<W>`: the first W, while the tree has no
 *   more). N is written in groups of three digits, all but the last prefixed `x`
 *   (`x001/x234/067`). `tile/8/data/<N>` holds the records themselves.
 *
 * `recordIncluded` proves a record is in a signed tree: it recomputes the root from the record's
 * own hash and the hashes of the complete subtrees beside its path, read from tiles. Those are
 * what an attacker controls; the root they must produce is signed — so a record (and the module
 * hashes it lists) that the log does not hold cannot pass.
 */

/** Tile height used by the go command and sum.golang.org. */
export const TILE_HEIGHT = 8;
const TILE_WIDTH = 2 ** TILE_HEIGHT;
const HASH_SIZE = 32;

export function recordHash(record: Uint8Array): Buffer {
  return createHash("sha256").update(Buffer.from([0])).update(record).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash("sha256").update(Buffer.from([1])).update(left).update(right).digest();
}

export interface Tile {
  /** Tile level (-1: record data). */
  readonly level: number;
  readonly index: number;
  /** Hashes it holds: 256, or fewer for a partial tile. */
  readonly width: number;
}

/** `tile/8/0/x001/234.p/17`. */
export function tilePath(tile: Tile): string {
  let n = tile.index;
  let digits = String(n % 1000).padStart(3, "0");
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    digits = `x${String(n % 1000).padStart(3, "0")}/${digits}`;
  }
  const level = tile.level === -1 ? "data" : String(tile.level);
  return `tile/${TILE_HEIGHT}/${level}/${digits}${tile.width === TILE_WIDTH ? "" : `.p/${tile.width}`}`;
}

/**
 * The tile a path names, when it is a tile path exactly as the log writes them (height 8, no
 * leading zeros, no other spelling); undefined otherwise.
 */
export function parseTilePath(path: string): Tile | undefined {
  const match = /^tile\/8\/(data|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/){0,5}[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path);
  if (match === null) return undefined;
  const level = match[1] === "data" ? -1 : Number(match[1]);
  if (level > 63) return undefined;
  const index = (match[2] ?? "").split("/").reduce((n, group) => n * 1000 + Number(group.replace("x", "")), 0);
  const width = match[3] === undefined ? TILE_WIDTH : Number(match[3]);
  if (width >= TILE_WIDTH && match[3] !== undefined) return undefined;
  const tile = { level, index, width };
  return tilePath(tile) === path && Number.isSafeInteger(index) ? tile : undefined;
}

/** Reads a tile's bytes (W × 32 of hashes); may throw. */
export type TileReader = (tile: Tile) => Promise<Buffer>;

/** The root of `hashes` (a power-of-two count of consecutive hashes of one level). */
function subtreeOf(hashes: Buffer, start: number, count: number): Buffer {
  if (count === 1) return hashes.subarray(start * HASH_SIZE, (start + 1) * HASH_SIZE);
  const half = count / 2;
  return nodeHash(subtreeOf(hashes, start, half), subtreeOf(hashes, start + half, half));
}

/** The largest power of two below `n` (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** `log2(n)` when `n` is a power of two; undefined otherwise. */
function exactLog2(n: number): number | undefined {
  let level = 0;
  let power = 1;
  while (power < n) {
    power *= 2;
    level++;
  }
  return power === n ? level : undefined;
}

/**
 * Whether the record with hash `leaf` is record `id` of `tree`. Reads the tiles a go command
 * reads for the same proof (each as wide as `tree` makes it), each at most once.
 */
export async function recordIncluded(id: number, leaf: Buffer, tree: TreeHead, readTile: TileReader): Promise<boolean> {
  if (!Number.isSafeInteger(id) || id < 0 || id >= tree.size) return false;
  const tiles = new Map<string, Promise<Buffer>>();

  /** Hash of the complete subtree of 2^level leaves starting at leaf `first` (aligned). */
  const stored = async (first: number, level: number): Promise<Buffer> => {
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const below = level - tileLevel * TILE_HEIGHT;
    const unit = 2 ** (tileLevel * TILE_HEIGHT);
    const start = first / unit; // index of its first hash at the tile's level
    const index = Math.floor(start / TILE_WIDTH);
    const width = Math.min(TILE_WIDTH, Math.floor(tree.size / unit) - index * TILE_WIDTH);
    const tile: Tile = { level: tileLevel, index, width };
    const path = tilePath(tile);
    let bytes = tiles.get(path);
    if (bytes === undefined) {
      bytes = readTile(tile);
      tiles.set(path, bytes);
    }
    const data = await bytes;
    if (data.length !== width * HASH_SIZE) throw new Error(`tile ${path} has ${data.length} bytes, not ${width * HASH_SIZE}`);
    return subtreeOf(data, start - index * TILE_WIDTH, 2 ** below);
  };

  /** Hash of leaves [lo, hi), which does not hold `id`. */
  const rangeHash = async (lo: number, hi: number): Promise<Buffer> => {
    const count = hi - lo;
    const level = exactLog2(count);
    if (level !== undefined && lo % count === 0) return stored(lo, level);
    const k = splitPoint(count);
    const [left, right] = await Promise.all([rangeHash(lo, lo + k), rangeHash(lo + k, hi)]);
    return nodeHash(left, right);
  };

  /** Hash of leaves [lo, hi) with `leaf` standing for record `id` among them. */
  const withLeaf = async (lo: number, hi: number): Promise<Buffer> => {
    if (hi - lo === 1) return leaf;
    const k = splitPoint(hi - lo);
    const [left, right] = await Promise.all(id < lo + k ? [withLeaf(lo, lo + k), rangeHash(lo + k, hi)] : [rangeHash(lo, lo + k), withLeaf(lo + k, hi)]);
    return nodeHash(left, right);
  };

  return (await withLeaf(0, tree.size)).equals(tree.hash);
}
