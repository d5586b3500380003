/** One problem in the configuration: where it came from, which key, and why. */
export interface ConfigProblem {
  /** The file (as the user named it), or the environment variable / flag that supplied the value. */
  readonly source: string;
  /** `rate_limit.per_token_per_minute`, `backends[2].config.prefix`; "" for the whole source. */
  readonly path: string;
  readonly message: string;
}

/**
 * A configuration the service refuses to start with. Its message has one line per problem, each
 * `source: path: why`, e.g. `config.yml: rate_limit.per_token_per_minute: expected a number ≥ 0,
 * got "lots"`. The CLI prints it and exits 2.
 */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super(problems.map(formatProblem).join("\n"), options);
    this.name = "ConfigError";
    this.problems = problems;
  }

  static single(source: string, path: string, message: string, options?: { cause?: unknown }): ConfigError {
    return new ConfigError([{ source, path, message }], options);
  }
}

export function formatProblem(problem: ConfigProblem): string {
  return [problem.source, problem.path, problem.message].filter((part) => part !== "").join(": ");
}
