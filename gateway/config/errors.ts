/**
 * The error every config problem becomes: it names where in the config the problem is.
 *
 * @module
 */

/**
 * A configuration error that names its place in the YAML form.
 *
 * `path` reads like `rules[1].from[0]` or `auth.users[0].password`; it is `""` when the
 * problem is the document as a whole (a YAML syntax error, an unreadable file). The message is
 * `"<path>: <reason>"`, or just the reason when the path is empty.
 */
export class ConfigError extends Error {
  /** Where the problem is, in YAML key form (`rules[1].from[0]`); `""` for the whole document. */
  readonly path: string;
  /** The reason alone, without the path. */
  readonly reason: string;

  /**
   * Creates a config error.
   *
   * @param path Where the problem is (`auth.users[0].name`), or `""` for the whole document.
   * @param reason What is wrong, in lower case (`must be a string`).
   * @param options Standard error options (`cause`).
   */
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(path === "" ? reason : `${path}: ${reason}`, options);
    this.name = "ConfigError";
    this.path = path;
    this.reason = reason;
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
