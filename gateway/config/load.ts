/**
 * Loading the config: YAML text, a file, or CLI flags all become one document that goes through
 * the one schema ({@linkcode configSchema}), and every problem becomes a path-qualified
 * {@linkcode ConfigError}. Also the reverse: the normalised, secret-free YAML form for
 * `main.ts check --config`.
 *
 * @module
 */

import YAML from "yaml";
import type { z } from "zod";
import { formatEndpoint, formatIp } from "../../net/address.ts";
import { formatCidr } from "../../net/cidr.ts";
import { errorText } from "../../net/error_text.ts";
import {
  ConfigError,
  type ConfigProblem,
  formatConfigPath,
  formatConfigProblem,
} from "./errors.ts";
import { parsePasswordHash } from "./password.ts";
import { formatUserLimits } from "./_user_limits.ts";
import { configSchema } from "./schema.ts";
import { formatDestinationPattern } from "../access/destination_pattern.ts";
import { formatTranslatorConfig } from "../../translators/registry.ts";
import type {
  AddressPerFamily,
  Config,
  EgressConfig,
  HopEndpoint,
  RouteConfig,
  RuleConfig,
} from "./types.ts";

/**
 * The embedded default config: listens on `127.0.0.1:1080` and `[::1]:1080`, no
 * authentication, the safe default rules. Every other key is spelled out with its default value.
 */
export const DEFAULT_CONFIG_YAML: string = `# dualgate default configuration
listen: ["127.0.0.1:1080", "[::1]:1080"]
auth:
  users: []                      # none => no authentication
resolver:
  prefer: happy-eyeballs         # or ipv6 | ipv4 | ipv6-only | ipv4-only
  hosts: {}
  hosts_file: /etc/hosts
  servers: []                    # none => the system configuration
  timeout: 5                     # seconds
  cache_size: 10000
  max_ttl: 300                   # seconds
  negative_ttl: 30               # seconds
  # stand_ins: cross-family      # RESOLVE stand-ins; or never (the default with workers > 1)
# rules: absent => allow all but the safe defaults
timeouts:                        # seconds
  handshake: 10
  connect: 10
  idle: 300
  drain: 10
limits:
  max_connections: 4096
  max_connections_per_client: 512
  auth_failures_per_minute: 10   # failed RFC 1929 logins per client address
  ipv6_client_prefix: 64         # an IPv6 client is its /64 for the per-client limits
  per_user:                      # each RFC 1929 user's, unless auth.users[].limits say otherwise
    max_connections: unlimited   # or N: simultaneous connections of one user
    bandwidth:                   # bytes per second, all the user's relays together
      up: unlimited              # or a rate: 1MiB, 500KB/s, 1048576
      down: unlimited
    quota: unlimited             # or { bytes: 10GiB, period: hour | day | week | month }
udp:                             # UDP ASSOCIATE
  public_address: {}             # { v4: IP, v6: IP }: BND.ADDR behind NAT
  idle: 120                      # seconds
  max_datagram: 65507            # bytes, SOCKS header included
  rate: 100000                   # datagrams per second per client (flood limit), each way
  total_rate: 1000000            # datagrams per second across all associations, each way
bind:                            # BIND
  external_address: {}           # { v4: IP, v6: IP }: BND.ADDR behind NAT
  wait: 120                      # seconds for the peer to connect
log:
  level: info                    # or debug | warning | error
  format: text                   # or json
  # audit: { file: PATH }       # one JSON line per finished connection; reopened on SIGUSR1
workers: 1                       # isolates (cores) serving clients, sharing the listen ports; or auto
reload:                          # SIGHUP or POST /reload on the admin listener
  recheck: false                 # true: close live sessions the reloaded rules refuse
`;

/**
 * CLI flags that shape the config
 * (`main.ts serve [--config FILE] [--listen ADDR:PORT]... [--workers N]`).
 */
export interface ConfigFlags {
  /** A YAML config file; without it, {@linkcode DEFAULT_CONFIG_YAML}. */
  readonly config?: string | undefined;
  /** Listen addresses; when non-empty they replace the `listen` list of the file or default. */
  readonly listen?: readonly string[] | undefined;
  /** `--workers N` as given; when set it replaces `workers` of the file or default. */
  readonly workers?: string | undefined;
}

/**
 * Parses and validates YAML config text. Empty text (or a document that is only `null`) is
 * the default config.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./load.ts";
 * const config = parseConfig('listen: ["[::]:1080"]\nlog: { level: debug }');
 * console.log(config.listen.length, config.log.level); // 1 "debug"
 * ```
 *
 * @param yamlText The YAML document.
 * @returns The validated config.
 * @throws {ConfigError} naming the path of every problem, or `""` for a YAML syntax error.
 */
export function parseConfig(yamlText: string): Config {
  return validate(readYaml(yamlText));
}

/**
 * Reads, parses and validates a YAML config file.
 *
 * @param path The file.
 * @returns The validated config.
 * @throws {ConfigError} when the file cannot be read, is not YAML, or is not a valid config.
 */
export async function loadConfigFile(path: string): Promise<Config> {
  return validate(readYaml(await readConfigText(path)));
}

/**
 * Builds the config from CLI flags: the file named by `--config` (or the embedded default),
 * with `--listen` values, when given, replacing its `listen` list and `--workers` its
 * `workers`. The flags become part of the document before validation, so they are checked
 * exactly as the YAML would be.
 *
 * @param flags The parsed flags.
 * @returns The validated config.
 * @throws {ConfigError} as {@linkcode loadConfigFile}; a bad `--listen` value names
 *   `listen[i]` and says it came from `--listen` (likewise `workers` and `--workers`).
 */
export async function configFromFlags(flags: ConfigFlags): Promise<Config> {
  const document = readYaml(
    flags.config === undefined ? DEFAULT_CONFIG_YAML : await readConfigText(flags.config),
  );
  const listen = flags.listen ?? [];
  const overrides: Record<string, unknown> = {};
  const given: [RegExp, string][] = [];
  if (listen.length > 0) {
    overrides.listen = [...listen];
    given.push([/^listen(\[|$)/, "--listen"]);
  }
  if (flags.workers !== undefined) {
    // A number when it reads as one, so that the schema's own rule words the error.
    const text = flags.workers.trim();
    overrides.workers = /^[+-]?\d+(\.\d+)?$/.test(text) ? Number(text) : flags.workers;
    given.push([/^workers$/, "--workers"]);
  }
  if (given.length === 0) return validate(document);
  const base = document ?? {};
  // A document that is not a mapping is left for the schema to refuse.
  if (typeof base !== "object" || Array.isArray(base)) return validate(base);
  try {
    return validate({ ...base, ...overrides });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const [first, ...more] = error.problems.map((problem): ConfigProblem => {
      const flag = given.find(([path]) => path.test(problem.path))?.[1];
      return flag
        ? { path: problem.path, reason: `${problem.reason} (given by ${flag})` }
        : problem;
    });
    throw new ConfigError(first!.path, first!.reason, { cause: error, more });
  }
}

/**
 * The config in its YAML key form (snake_case keys, addresses and prefixes as text, times in
 * seconds) as a plain, YAML-serialisable object, with secrets redacted: a password becomes
 * `"<redacted>"` and a hash keeps only its scrypt parameters (`scrypt$16384$8$1$<redacted>`).
 * `rules` is left out when absent (the defaults apply). Parsing it again gives the same
 * config, apart from the redacted secrets.
 *
 * @param config A validated config.
 * @returns The plain object.
 */
export function normalizeConfig(config: Config): Record<string, unknown> {
  const seconds = (ms: number) => ms / 1000;
  const hosts: Record<string, string[]> = {};
  for (const [name, addresses] of Object.entries(config.resolver.hosts)) {
    hosts[name] = [...addresses];
  }
  return {
    listen: config.listen.map((entry) =>
      entry.proxyProtocol
        ? {
          address: formatEndpoint(entry.endpoint),
          proxy_protocol: entry.proxyProtocol,
          ...(entry.trustedProxies && { trusted_proxies: entry.trustedProxies.map(formatCidr) }),
        }
        : entry.protocol
        ? { address: formatEndpoint(entry.endpoint), protocol: entry.protocol }
        : formatEndpoint(entry.endpoint)
    ),
    auth: {
      users: config.auth.users.map((user) => {
        const limits = user.limits && { limits: formatUserLimits(user.limits) };
        const egress = user.egress ? normalizeEgress(user.egress) : {};
        if (user.passwordHash === undefined) {
          return { name: user.name, password: "<redacted>", ...limits, ...egress };
        }
        const parsed = parsePasswordHash(user.passwordHash).hash;
        return {
          name: user.name,
          password_hash: parsed
            ? `scrypt$${parsed.N}$${parsed.r}$${parsed.p}$<redacted>`
            : "<redacted>",
          ...limits,
          ...egress,
        };
      }),
    },
    resolver: {
      prefer: config.resolver.prefer,
      hosts,
      hosts_file: config.resolver.hostsFile,
      servers: [...config.resolver.servers],
      timeout: seconds(config.resolver.timeoutMs),
      cache_size: config.resolver.cacheSize,
      max_ttl: config.resolver.maxTtlSeconds,
      negative_ttl: config.resolver.negativeTtlSeconds,
      stand_ins: config.resolver.standIns,
    },
    ...(config.rules !== null && { rules: config.rules.map(normalizeRule) }),
    timeouts: {
      handshake: seconds(config.timeouts.handshakeMs),
      connect: seconds(config.timeouts.connectMs),
      idle: seconds(config.timeouts.idleMs),
      drain: seconds(config.timeouts.drainMs),
    },
    limits: {
      max_connections: config.limits.maxConnections,
      max_connections_per_client: config.limits.maxConnectionsPerClient,
      auth_failures_per_minute: config.limits.authFailuresPerMinute,
      ipv6_client_prefix: config.limits.ipv6ClientPrefix,
      per_user: formatUserLimits(config.limits.perUser),
    },
    udp: {
      public_address: formatPerFamily(config.udp.publicAddress),
      idle: seconds(config.udp.idleMs),
      max_datagram: config.udp.maxDatagram,
      rate: config.udp.rate,
      total_rate: config.udp.totalRate,
    },
    bind: {
      external_address: formatPerFamily(config.bind.externalAddress),
      wait: seconds(config.bind.waitMs),
    },
    ...(config.routes.length > 0 && { routes: config.routes.map(normalizeRoute) }),
    ...(config.translators.length > 0 && {
      translators: config.translators.map((entry) => formatTranslatorConfig(entry)),
    }),
    ...(config.admin && {
      admin: {
        listen: formatEndpoint(config.admin.endpoint),
        ...(config.admin.auth && {
          auth: {
            ...(config.admin.auth.tokenFile !== undefined &&
              { token_file: config.admin.auth.tokenFile }),
            ...(config.admin.auth.tokenSha256 !== undefined &&
              { token_sha256: config.admin.auth.tokenSha256 }),
            users: config.admin.auth.users,
          },
        }),
      },
    }),
    log: {
      level: config.log.level,
      format: config.log.format,
      ...(config.log.auditFile !== undefined && { audit: { file: config.log.auditFile } }),
    },
    workers: config.workers,
    reload: { recheck: config.reload.recheck },
  };
}

function normalizeRoute(route: RouteConfig): Record<string, unknown> {
  const url = (hop: HopEndpoint) => {
    if (!hop.credentials) return hop.label;
    return hop.label.replace(
      "socks5://",
      `socks5://${encodeURIComponent(hop.credentials.username)}:<redacted>@`,
    );
  };
  return {
    to: route.to.map(formatDestinationPattern),
    ...(route.ports && { ports: route.ports.map(formatPortRange) }),
    ...(route.chain.length > 0 && {
      chain: route.chain.map((hop) => ({
        any: hop.alternatives.map(url),
        strategy: hop.strategy,
        max_fails: hop.maxFails,
        fail_timeout: hop.failTimeoutMs / 1000,
      })),
    }),
    ...(route.egress && normalizeEgress(route.egress)),
  };
}

function normalizeEgress(egress: EgressConfig): Record<string, unknown> {
  return {
    ...(egress.addresses.length > 0 && { egress: egress.addresses.map(formatIp) }),
    ...(egress.prefix && { egress_prefix: formatCidr(egress.prefix) }),
    egress_policy: egress.policy,
  };
}

function formatPortRange(range: { from: number; to: number }): number | string {
  return range.from === range.to ? range.from : `${range.from}-${range.to}`;
}

function formatPerFamily(addresses: AddressPerFamily): Record<string, string> {
  return {
    ...(addresses.v4 && { v4: formatIp(addresses.v4) }),
    ...(addresses.v6 && { v6: formatIp(addresses.v6) }),
  };
}

/**
 * The normalised config ({@linkcode normalizeConfig}) as YAML text, secrets redacted.
 *
 * @param config A validated config.
 * @returns YAML text.
 */
export function formatConfigYaml(config: Config): string {
  return YAML.stringify(normalizeConfig(config));
}

function normalizeRule(rule: RuleConfig): Record<string, unknown> {
  return {
    action: rule.action,
    ...(rule.from && { from: rule.from.map(formatCidr) }),
    ...(rule.to && { to: rule.to.map(formatDestinationPattern) }),
    ...(rule.ports && { ports: rule.ports.map(formatPortRange) }),
    ...(rule.users && { users: [...rule.users] }),
    ...(rule.commands && { commands: [...rule.commands] }),
  };
}

async function readConfigText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : errorText(error);
    throw new ConfigError("", `Cannot read config file "${path}": ${reason}`, { cause: error });
  }
}

/** Parses YAML text into plain data (`null` for an empty document). */
function readYaml(text: string): unknown {
  let document: YAML.Document.Parsed;
  try {
    document = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new Deno.errors.NotCapable(
        "Cannot parse config: the yaml package reads the LOG_TOKENS and LOG_STREAM " +
          "environment variables; run with --allow-env=LOG_TOKENS,LOG_STREAM",
        { cause: error },
      );
    }
    throw error;
  }
  const [error] = document.errors;
  if (error) {
    const where = error.linePos?.[0];
    const what = error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    const at = where ? ` at line ${where.line}, column ${where.col}` : "";
    throw new ConfigError("", `Cannot parse YAML: ${what}${at}`, { cause: error });
  }
  try {
    return document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError("", `Cannot parse YAML: ${errorText(error)}`, { cause: error });
  }
}

/** Validates a YAML document against the schema; every issue becomes part of a ConfigError. */
function validate(document: unknown): Config {
  const result = configSchema.safeParse(document, { reportInput: true });
  if (result.success) return result.data;
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const issue of result.error.issues) {
    const [path, reason] = describeIssue(issue);
    const problem = { path: formatConfigPath(path), reason };
    const key = formatConfigProblem(problem);
    if (!seen.has(key)) problems.push(problem);
    seen.add(key);
  }
  const [first, ...more] = problems;
  if (!first) throw new ConfigError("", "Cannot load config: invalid");
  throw new ConfigError(first.path, first.reason, { cause: result.error, more });
}

const KIND_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
};

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Date) return "a date";
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

/** The path and a lower-case reason for one zod issue, in the config's own words. */
function describeIssue(issue: z.core.$ZodIssue): [PropertyKey[], string] {
  const path = [...issue.path];
  switch (issue.code) {
    case "unrecognized_keys": {
      const [key, ...more] = issue.keys;
      const also = more.length > 0 ? ` (also ${more.map((k) => `"${k}"`).join(", ")})` : "";
      return [[...path, key ?? ""], `unknown key${also}`];
    }
    case "invalid_type":
      if (issue.input === undefined) return [path, "is required"];
      return [
        path,
        `must be ${KIND_NAMES[issue.expected] ?? issue.expected}, not ${kindOf(issue.input)}`,
      ];
    case "invalid_value": {
      const values = issue.values.map((v) => String(v)).join(", ");
      if (issue.input === undefined) return [path, `is required: one of ${values}`];
      return [path, `must be one of ${values}, not ${JSON.stringify(issue.input)}`];
    }
    case "invalid_union":
      return [path, `must be a number or a string, not ${kindOf(issue.input)}`];
    default:
      return [path, issue.message];
  }
}
