/**
 * The error every config problem becomes: it names where in the config the problem is.
 *
 * @module
 */

/** One problem in a config: where it is and what is wrong. */
export interface ConfigProblem {
  /** Where the problem is, in YAML key form (`rules[1].from[0]`); `""` for the whole document. */
  readonly path: string;
  /** The reason alone, without the path. */
  readonly reason: string;
}

/** Options of {@linkcode ConfigError}: the standard ones, and the problems after the first. */
export interface ConfigErrorOptions extends ErrorOptions {
  /** Further problems found in the same config, reported with the first. */
  readonly more?: readonly ConfigProblem[];
}

/** `"<path>: <reason>"`, or just the reason when the path is empty. */
export function formatConfigProblem(problem: ConfigProblem): string {
  return problem.path === "" ? problem.reason : `${problem.path}: ${problem.reason}`;
}

/**
 * A configuration error that names its place in the YAML form: every problem found in the
 * config, so that one run shows all that needs fixing.
 *
 * `path` reads like `rules[1].from[0]` or `auth.users[0].password`; it is `""` when the
 * problem is the document as a whole (a YAML syntax error, an unreadable file). `path` and
 * `reason` are the first problem; `problems` lists them all (the first included). The message
 * is one `"<path>: <reason>"` line per problem (just the reason when the path is empty).
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 * const error = new ConfigError("listen[0]", "port missing", {
 *   more: [{ path: "workers", reason: "must be a positive integer" }],
 * });
 * console.log(error.problems.length, error.message); // 2 "listen[0]: port missing\nworkers: ..."
 * ```
 */
export class ConfigError extends Error {
  /** Where the (first) problem is, in YAML key form; `""` for the whole document. */
  readonly path: string;
  /** The (first) reason alone, without the path. */
  readonly reason: string;
  /** Every problem, the first one (`path`, `reason`) included. */
  readonly problems: readonly ConfigProblem[];

  /**
   * Creates a config error.
   *
   * @param path Where the problem is (`auth.users[0].name`), or `""` for the whole document.
   * @param reason What is wrong, in lower case (`must be a string`).
   * @param options Standard error options (`cause`), and `more` problems.
   */
  constructor(path: string, reason: string, options?: ConfigErrorOptions) {
    const problems = [{ path, reason }, ...(options?.more ?? [])];
    super(problems.map(formatConfigProblem).join("\n"), options);
    this.name = "ConfigError";
    this.path = path;
    this.reason = reason;
    this.problems = problems;
  }
}

/**
 * Formats a key path (`["rules", 1, "from", 0]`) as `rules[1].from[0]`. Keys that are not
 * plain identifiers, such as host names, are quoted: `resolver.hosts["intranet.example"][1]`.
 */
export function formatConfigPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else if (typeof key === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      text += text === "" ? key : `.${key}`;
    } else text += `[${JSON.stringify(String(key))}]`;
  }
  return text;
}
