/** An inclusive byte range, as in HTTP: `start` and `end` both point at bytes that are sent. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}
