/** A line of an input file that names nothing to warm, and why (a git dependency, an unpinned requirement). */
export interface UnwarmedInput {
  readonly text: string;
  readonly reason: string;
}
