import { extname } from "node:path";

/** Content types of common file extensions (lower case, with the dot). Deliberately short. */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  ".txt": "text/plain",
  ".log": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".html": "text/html",
  ".htm": "text/html",
  ".css": "text/css",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".json": "application/json",
  ".xml": "application/xml",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".toml": "application/toml",
  ".pdf": "application/pdf",
  ".wasm": "application/wasm",
  ".zip": "application/zip",
  ".whl": "application/zip",
  ".jar": "application/java-archive",
  ".tar": "application/x-tar",
  ".gz": "application/gzip",
  ".tgz": "application/gzip",
  ".bz2": "application/x-bzip2",
  ".xz": "application/x-xz",
  ".zst": "application/zstd",
  ".7z": "application/x-7z-compressed",
  ".deb": "application/vnd.debian.binary-package",
  ".rpm": "application/x-rpm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".ico": "image/vnd.microsoft.icon",
  ".mp3": "audio/mpeg",
  ".mp4": "video/mp4",
  ".woff2": "font/woff2",
};

export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** The content type a file's name suggests, or `application/octet-stream`. */
export function guessContentType(fileName: string): string {
  return BY_EXTENSION[extname(fileName).toLowerCase()] ?? DEFAULT_CONTENT_TYPE;
}
