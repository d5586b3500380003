/** What a command may touch of the outside world; tests can hand in their own. */
export interface CliIo {
  /** Writes a line (a newline is added) to standard output. */
  readonly out: (line: string) => void;
  /** Writes a line (a newline is added) to standard error. */
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly now: () => Date;
}

export function processIo(): CliIo {
  // `artifact-vault tokens list | head -1`: a reader that went away is not our failure. Any
  // other output failure (a full disk behind `> file`) ends the command with exit 1 and a
  // one-line message, not a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") return;
      if (stream !== process.stderr) process.stderr.write(`error: cannot write output: ${error.message}\n`);
      process.exit(1);
    });
  }
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    cwd: process.cwd(),
    now: () => new Date(),
  };
}
