/**
 * Config loading: YAML (a file, text, or the embedded default) and CLI flags become one
 * validated, typed {@linkcode Config}, through one schema. Every problem is a
 * {@linkcode ConfigError} naming its path (`rules[0].from[1]: ...`).
 *
 * Top-level keys (all optional): `listen`, `auth`, `resolver`, `rules`, `timeouts`, `limits`,
 * `udp`, `bind`, `routes`, `translators`, `admin`, `log`, `workers` and `reload`. The schema's
 * `.default()`s are the one source of the defaults; {@linkcode DEFAULT_CONFIG_YAML} spells
 * every one out, and `defaults_test.ts` checks it and the README's Configuration reference
 * against the schema. In `rules[].to`, `*.example.com` matches any name ending in
 * `.example.com` but not `example.com` itself.
 *
 * The `yaml` package reads the `LOG_TOKENS` and `LOG_STREAM` environment variables on every
 * parse, so programs that load config need `--allow-env` (at least for those two).
 *
 * @example
 * ```ts
 * import { configFromFlags, formatConfigYaml } from "./mod.ts";
 * const config = await configFromFlags({ listen: ["127.0.0.1:1080"] });
 * console.log(formatConfigYaml(config));
 * ```
 *
 * @module
 */

export * from "./types.ts";
export {
  ConfigError,
  type ConfigErrorOptions,
  type ConfigProblem,
  formatConfigPath,
  formatConfigProblem,
} from "./errors.ts";
export * from "./load.ts";
export {
  hashPassword,
  type HashPasswordOptions,
  parsePasswordHash,
  type ScryptHash,
  verifyPassword,
} from "./password.ts";
export { autoWorkerCount, configSchema, DEFAULT_LISTEN } from "./schema.ts";
export { type ConfigWarning, configWarnings, formatConfigWarning } from "./warnings.ts";
