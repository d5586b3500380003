import { integer } from "../core/config/scalars.js";

/**
 * How a backend's requests to its upstream are made: the same two options in every backend's
 * `config` block. Spread `upstreamRequestFields` into its options schema.
 */
export const upstreamRequestFields = {
  /** Seconds for connect, headers and between body chunks. */
  timeout: integer(1).default(30),
  /** Attempts before the first byte for connection errors and 502/503/504. */
  retries: integer(1, 10).default(3),
};
