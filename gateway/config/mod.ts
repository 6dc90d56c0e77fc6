/**
 * Config loading: YAML (a file, text, or the embedded default) and CLI flags become one
 * validated, typed {@linkcode Config}, through one schema. Every problem is a
 * {@linkcode ConfigError} naming its path (`rules[0].from[1]: ...`).
 *
 * Accepted keys (all optional): `listen`, `auth.users[]` (`name` with `password` or
 * `password_hash`), `resolver` (`prefer`, `hosts`, `hosts_file`, `servers`, `timeout`,
 * `cache_size`, `max_ttl`, `negative_ttl`), `rules[]` (`action`, `from`, `to`, `ports`,
 * `users`, `commands`), `timeouts` (`handshake`, `connect`, `idle`, `drain`, in seconds),
 * `limits` (`max_connections`, `max_connections_per_client`) and `log` (`level`, `format`).
 * {@linkcode DEFAULT_CONFIG_YAML} spells out every default. In `rules[].to`, `*.example.com`
 * matches any name ending in `.example.com` but not `example.com` itself.
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
export {
  type ConfigFlags,
  configFromFlags,
  DEFAULT_CONFIG_YAML,
  formatConfigYaml,
  loadConfigFile,
  normalizeConfig,
  parseConfig,
} from "./load.ts";
export {
  hashPassword,
  type HashPasswordOptions,
  parsePasswordHash,
  type ScryptHash,
  verifyPassword,
} from "./password.ts";
export { configSchema, DEFAULT_LISTEN } from "./schema.ts";
export { type ConfigWarning, configWarnings, formatConfigWarning } from "./warnings.ts";
