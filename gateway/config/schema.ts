/**
 * The zod schema of the YAML config form. It validates the snake_case document, parses every
 * string that names an address, prefix, port or pattern into its typed value (once, here at the
 * edge), fills in defaults, and outputs the typed {@linkcode Config}.
 *
 * Issue paths are the YAML key paths (`rules[0].from[1]`); `load.ts` turns every issue into a
 * problem of one `ConfigError`. The `.default()`s here are the one source of the defaults:
 * `DEFAULT_CONFIG_YAML` and the README's tables are tested against them (`defaults_test.ts`).
 *
 * @module
 */

import { z } from "zod";
import { formatIp, type IpAddress, isUnspecified, parseIp, unmapIpv4 } from "../../net/address.ts";
import {
  type Cidr,
  cidrContains,
  formatCidr,
  isLoopback,
  isMulticastOrBroadcast,
  parseCidr,
} from "../../net/cidr.ts";
import { errorText } from "../../net/error_text.ts";
import {
  normalizeName,
  type Parsed,
  parseListenAddress,
  parseServer,
  redactUrlPassword,
} from "./_parse.ts";
import { parsePasswordHash } from "./password.ts";
import { selfHopIssues } from "./_self_hop.ts";
import { isUnlimited, mergeUserLimits, userLimitsSchema } from "./_user_limits.ts";
import { parseGatewayUrl } from "../../client/gateway_url.ts";
import { HOP_STRATEGIES } from "../../client/selector.ts";
import { translatorConfigSchema } from "../../translators/registry.ts";
import type {
  AddressPerFamily,
  Config,
  DestinationPattern,
  EgressConfig,
  EgressPolicy,
  FamilyPreference,
  HopConfig,
  HopEndpoint,
  ListenConfig,
  ListenProtocol,
  ProxyProtocolMode,
  RouteConfig,
  RuleCommand,
  RuleConfig,
  StandInMode,
  UserConfig,
} from "./types.ts";

/** The `listen` addresses used when neither the file nor the flags give any. */
export const DEFAULT_LISTEN: readonly string[] = ["127.0.0.1:1080", "[::1]:1080"];

/** Where the admin listener (metrics, health) listens when `admin:` gives no address. */
export const DEFAULT_ADMIN_LISTEN = "127.0.0.1:9090";

/** The largest timeout in seconds: timers overflow past 2³¹−1 ms (about 24.8 days). */
const MAX_SECONDS = 2_147_483;

const FAMILY_PREFERENCES = [
  "happy-eyeballs",
  "ipv6",
  "ipv4",
  "ipv6-only",
  "ipv4-only",
] as const satisfies readonly FamilyPreference[];
const STAND_IN_MODES = ["cross-family", "never"] as const satisfies readonly StandInMode[];
const RULE_COMMANDS = [
  "connect",
  "bind",
  "udp",
  "resolve",
] as const satisfies readonly RuleCommand[];

const utf8 = new TextEncoder();

/** A string parsed by `parse`, which returns the typed value or the reason it has none. */
function parsedString<T>(parse: (text: string) => Parsed<T>) {
  return z.string().transform((text, ctx): T => {
    const result = parse(text);
    if (result.ok) return result.value;
    ctx.addIssue({ code: "custom", message: result.reason });
    return z.NEVER;
  });
}

/** A list of `item`; a single value where the list is expected is a list of one. */
function many<T extends z.ZodType>(item: T, options: { empty?: string } = {}) {
  const list = z.array(item);
  return z.preprocess(
    (value) => (value === undefined || value === null || Array.isArray(value) ? value : [value]),
    options.empty === undefined ? list : list.min(1, options.empty),
  );
}

/** `admin.auth`: a bearer token (from a file or as its SHA-256) and/or the SOCKS users. */
const adminAuth = z.strictObject({
  token_file: z.string().min(1, "must name a file").optional(),
  token_sha256: z.string().regex(
    /^[0-9a-fA-F]{64}$/,
    "must be 64 hex digits (SHA-256 of the token)",
  )
    .transform((hex) => hex.toLowerCase()).optional(),
  users: z.boolean().default(false),
}).superRefine((value, ctx) => {
  if (value.token_file !== undefined && value.token_sha256 !== undefined) {
    ctx.addIssue({
      code: "custom",
      message: "give token_file or token_sha256, not both",
      path: ["token_sha256"],
    });
  }
  if (value.token_file === undefined && value.token_sha256 === undefined && !value.users) {
    ctx.addIssue({
      code: "custom",
      message: "needs token_file, token_sha256 or users: true",
    });
  }
});

/** A strict mapping (unknown keys are errors); an empty (`null`) section means all defaults. */
function section<T extends Record<string, z.ZodType>>(shape: T) {
  return z.preprocess((value) => value ?? {}, z.strictObject(shape));
}

/**
 * Picks a schema by the JavaScript type of the value (string, array or object) and validates
 * with it alone, so that errors speak of that form instead of a union of all forms.
 */
function byForm<T>(
  forms: { string?: z.ZodType<T>; array?: z.ZodType<T>; object?: z.ZodType<T> },
  expected: string,
) {
  return z.unknown().transform((value, ctx): T => {
    const form = typeof value === "string"
      ? forms.string
      : Array.isArray(value)
      ? forms.array
      : value !== null && typeof value === "object"
      ? forms.object
      : undefined;
    if (!form) {
      ctx.addIssue({ code: "custom", message: `must be ${expected}` });
      return z.NEVER;
    }
    const result = form.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) {
          ctx.addIssue({ code: "custom", message: "unknown key", path: [...issue.path, key] });
        }
      } else ctx.addIssue({ code: "custom", message: issue.message, path: issue.path });
    }
    return z.NEVER;
  });
}

/** A number that `check` accepts, with `rule` as the reason when it does not. */
function numberWhere(check: (n: number) => boolean, rule: string) {
  return z.number().refine((n) => Number.isFinite(n) && check(n), rule);
}

const seconds = numberWhere(
  (n) => n > 0 && n <= MAX_SECONDS,
  `must be a number of seconds greater than 0 and at most ${MAX_SECONDS}`,
);
const positiveInteger = numberWhere(
  (n) => Number.isSafeInteger(n) && n >= 1,
  "must be a positive integer",
);
/**
 * What `workers: auto` means on a machine of `cores` cores: one fewer than the cores (the main
 * isolate and the kernel's share of the relaying take most of one), at least one. With one or
 * two cores that is 1, the single-isolate gateway (bench/RESULTS.md, "Scaling past one core").
 */
export function autoWorkerCount(cores: number = navigator.hardwareConcurrency): number {
  return Math.max(1, Math.floor(cores) - 1);
}

const nonNegativeInteger = numberWhere(
  (n) => Number.isSafeInteger(n) && n >= 0,
  "must be an integer of 0 or more",
);

/** A string of 1..255 UTF-8 bytes: RFC 1929 carries user names and passwords with a length byte. */
const rfc1929String = z.string().refine((text) => {
  const length = utf8.encode(text).length;
  return length >= 1 && length <= 255;
}, "must be 1..255 bytes of UTF-8");

const cidr = parsedString((text): Parsed<Cidr> => {
  try {
    return { ok: true, value: parseCidr(text.trim()) };
  } catch (error) {
    const reason = errorText(error);
    return { ok: false, reason: reason.replace(/^Cannot parse CIDR: /, "") };
  }
});

const ipLiteral = parsedString((text): Parsed<string> => {
  const address = parseIp(text.trim());
  return address
    ? { ok: true, value: formatIp(address) }
    : { ok: false, reason: `"${text}" is not an IP address` };
});

/**
 * A destination pattern: `*` (every destination, names and addresses), a CIDR (or a bare
 * address), `*.suffix` (any name ending in `.suffix`, not `suffix` itself), or an exact name.
 * Names are lower case without a trailing dot.
 */
const destination = parsedString((raw): Parsed<DestinationPattern> => {
  const text = raw.trim();
  if (text === "*") return { ok: true, value: { kind: "any" } };
  if (text.includes("/") || parseIp(text)) {
    try {
      return { ok: true, value: { kind: "cidr", cidr: parseCidr(text) } };
    } catch (error) {
      const reason = errorText(error);
      return { ok: false, reason: reason.replace(/^Cannot parse CIDR: /, "") };
    }
  }
  if (text.startsWith("*.")) {
    const suffix = normalizeName(text.slice(2));
    return suffix.ok ? { ok: true, value: { kind: "suffix", suffix: suffix.value } } : suffix;
  }
  if (text.includes("*")) {
    return {
      ok: false,
      reason: `"${raw}": a wildcard is allowed only as "*" or a leading "*."`,
    };
  }
  const name = normalizeName(text);
  return name.ok ? { ok: true, value: { kind: "name", name: name.value } } : name;
});

/** A destination port `N` or an inclusive range `"N-M"`, ports 0..65535. */
const portRange = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const port = (text: string) => (/^\d{1,5}$/.test(text) ? Number(text) : NaN);
  const [fromText, toText, extra] = String(value).trim().split("-").map((part) => part.trim());
  const from = port(fromText ?? ""), to = toText === undefined ? from : port(toText);
  if (extra !== undefined || !(from >= 0 && to <= 65535 && from <= to)) {
    ctx.addIssue({
      code: "custom",
      message: `${JSON.stringify(value)} must be a port (0..65535) or a range "N-M" with N <= M`,
    });
    return z.NEVER;
  }
  return { from, to };
});

const EGRESS_POLICIES = [
  "per_connection",
  "sticky_user",
  "sticky_destination",
] as const satisfies readonly EgressPolicy[];

const LINK_LOCAL_V6 = parseCidr("fe80::/10");
const LOOPBACK_V6 = parseIp("::1")!;

/** A source address for outbound connections: a unicast address a socket can bind. */
const egressAddress = parsedString((raw): Parsed<IpAddress> => {
  const text = raw.trim();
  const address = parseIp(text);
  if (!address) return { ok: false, reason: `"${raw}" is not an IP address` };
  if (address.family === 6 && unmapIpv4(address).family === 4) {
    return { ok: false, reason: `"${raw}" is IPv4-mapped: write the IPv4 address` };
  }
  if (isUnspecified(address) || isMulticastOrBroadcast(address)) {
    return { ok: false, reason: `"${raw}" is not a unicast address` };
  }
  if (cidrContains(LINK_LOCAL_V6, address)) {
    return { ok: false, reason: `"${raw}" is link-local (it needs a zone): not a source address` };
  }
  return { ok: true, value: address };
});

/** An IPv6 prefix to draw source addresses from: /16../128, host bits clear, unicast. */
const egressPrefix = parsedString((raw): Parsed<Cidr> => {
  const text = raw.trim();
  let prefix: Cidr;
  try {
    prefix = parseCidr(text);
  } catch (error) {
    return { ok: false, reason: errorText(error).replace(/^Cannot parse CIDR: /, "") };
  }
  if (prefix.network.family !== 6 || !text.includes("/")) {
    return {
      ok: false,
      reason: `"${raw}" must be an IPv6 prefix ADDRESS/LENGTH (use egress for IPv4)`,
    };
  }
  if (prefix.prefixLength < 16) {
    return { ok: false, reason: `"${raw}": prefix length must be 16..128` };
  }
  if (formatIp(parseIp(text.split("/")[0]!)!) !== formatIp(prefix.network)) {
    return { ok: false, reason: `"${raw}" has host bits set: write ${formatCidr(prefix)}` };
  }
  if (
    isMulticastOrBroadcast(prefix.network) || cidrContains(LINK_LOCAL_V6, prefix.network) ||
    cidrContains(prefix, LOOPBACK_V6)
  ) {
    return { ok: false, reason: `"${raw}" is not a global or unique-local unicast prefix` };
  }
  return { ok: true, value: prefix };
});

/** The egress keys a route or a user takes. */
const egressFields = {
  egress: many(egressAddress, {
    empty: "must list at least one address; omit it to leave from the host's default",
  }).optional(),
  egress_prefix: egressPrefix.optional(),
  egress_policy: z.enum(EGRESS_POLICIES).optional(),
};

interface EgressFields {
  egress?: IpAddress[] | undefined;
  egress_prefix?: Cidr | undefined;
  egress_policy?: EgressPolicy | undefined;
}

/** Problems of a combination of egress keys (paths relative to the route or user). */
function egressIssues(value: EgressFields): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const seen = new Set<string>();
  value.egress?.forEach((address, index) => {
    const text = formatIp(address);
    if (seen.has(text)) issues.push({ path: ["egress", index], message: `duplicate ${text}` });
    seen.add(text);
    if (value.egress_prefix && address.family === 6) {
      issues.push({
        path: ["egress", index],
        message: `${text}: egress_prefix gives the IPv6 sources; list only IPv4 addresses here`,
      });
    }
  });
  if (value.egress_policy && !value.egress && !value.egress_prefix) {
    issues.push({ path: ["egress_policy"], message: "needs egress or egress_prefix" });
  }
  return issues;
}

/** The typed egress configuration, when any egress key is set. */
function egressConfig(value: EgressFields): EgressConfig | undefined {
  if (!value.egress && !value.egress_prefix) return undefined;
  return {
    addresses: value.egress ?? [],
    ...(value.egress_prefix && { prefix: value.egress_prefix }),
    policy: value.egress_policy ?? "per_connection",
  };
}

/** True when `egress` has a source address of `family`. */
function egressHas(egress: EgressConfig, family: 4 | 6): boolean {
  return egress.addresses.some((a) => a.family === family) ||
    egress.prefix?.network.family === family;
}

const user = z
  .strictObject({
    name: rfc1929String,
    password: rfc1929String.optional(),
    password_hash: z
      .string()
      .superRefine((text, ctx) => {
        const parsed = parsePasswordHash(text);
        if (parsed.error !== null) ctx.addIssue({ code: "custom", message: parsed.error });
      })
      .optional(),
    limits: userLimitsSchema.optional(),
    ...egressFields,
  })
  .superRefine((value, ctx) => {
    for (const issue of egressIssues(value)) ctx.addIssue({ code: "custom", ...issue });
    if ((value.password === undefined) === (value.password_hash === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: value.password === undefined
          ? "must have password or password_hash"
          : "must have exactly one of password and password_hash, not both",
      });
    }
  })
  // `limits` stays as written here: the config's transform merges it over `limits.per_user`.
  .transform((value) => {
    const egress = egressConfig(value);
    return {
      ...(value.password !== undefined
        ? { name: value.name, password: value.password }
        : { name: value.name, passwordHash: value.password_hash! }),
      ...(egress && { egress }),
      ...(value.limits !== undefined && { written: value.limits }),
    };
  });

const users = many(user).superRefine((list, ctx) => {
  const seen = new Map<string, number>();
  list.forEach((entry, index) => {
    const first = seen.get(entry.name);
    if (first === undefined) seen.set(entry.name, index);
    else {
      ctx.addIssue({
        code: "custom",
        message: `duplicate user name "${entry.name}" (first at auth.users[${first}])`,
        path: [index, "name"],
      });
    }
  });
});

const listenAddress = parsedString(parseListenAddress);
const PROXY_PROTOCOL_MODES = ["v1", "v2", "any"] as const satisfies readonly ProxyProtocolMode[];
const LISTEN_PROTOCOLS = ["socks5", "http", "mixed"] as const satisfies readonly ListenProtocol[];

/**
 * A listen entry: `"ADDR:PORT"`, or
 * `{ address: "ADDR:PORT", proxy_protocol: v1|v2|any, trusted_proxies: [CIDR, ...] }`.
 */
const listenEntry = byForm<ListenConfig>({
  string: listenAddress.transform((endpoint): ListenConfig => ({ endpoint })),
  object: z.strictObject({
    address: listenAddress,
    proxy_protocol: z.enum(PROXY_PROTOCOL_MODES).optional(),
    trusted_proxies: many(cidr, { empty: "must list at least one CIDR" }).optional(),
    protocol: z.enum(LISTEN_PROTOCOLS).optional(),
  }).superRefine((value, ctx) => {
    if (value.proxy_protocol && value.protocol !== undefined && value.protocol !== "socks5") {
      ctx.addIssue({
        code: "custom",
        message: "PROXY protocol headers are read only in front of SOCKS (protocol: socks5)",
        path: ["proxy_protocol"],
      });
    }
    if (value.trusted_proxies && !value.proxy_protocol) {
      ctx.addIssue({
        code: "custom",
        message: "needs proxy_protocol (only PROXY protocol listeners trust proxies)",
        path: ["trusted_proxies"],
      });
    }
  }).transform((value): ListenConfig => ({
    endpoint: value.address,
    ...(value.proxy_protocol && { proxyProtocol: value.proxy_protocol }),
    ...(value.trusted_proxies && { trustedProxies: value.trusted_proxies }),
    ...(value.protocol && value.protocol !== "socks5" && { protocol: value.protocol }),
  })),
}, 'an "ADDR:PORT" string or { address, protocol, proxy_protocol, trusted_proxies }');

const listen = many(listenEntry, { empty: "must list at least one address" })
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach(({ endpoint }, index) => {
      const key = `${formatIp(endpoint.address)} ${endpoint.port}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: "custom", message: "duplicate listen address", path: [index] });
      }
      seen.add(key);
    });
  });

const hosts = z
  .record(z.string(), many(ipLiteral, { empty: "must list at least one address" }))
  .transform((record, ctx) => {
    // A null prototype, so that a lookup of "constructor" finds nothing.
    const out: Record<string, readonly string[]> = Object.create(null);
    const original = new Map<string, string>();
    for (const [key, addresses] of Object.entries(record)) {
      const name = normalizeName(key.trim());
      if (!name.ok) {
        ctx.addIssue({ code: "custom", message: name.reason, path: [key] });
        continue;
      }
      const earlier = original.get(name.value);
      if (earlier !== undefined) {
        ctx.addIssue({
          code: "custom",
          message: `same name as "${earlier}" once normalised`,
          path: [key],
        });
        continue;
      }
      original.set(name.value, key);
      out[name.value] = addresses;
    }
    return out;
  });

const rule = z
  .strictObject({
    action: z.enum(["allow", "deny"]),
    from: many(cidr, { empty: "must not be empty; omit it to match any client" }).optional(),
    to: many(destination, { empty: "must not be empty; omit it to match any destination" })
      .optional(),
    ports: many(portRange, { empty: "must not be empty; omit it to match any port" }).optional(),
    users: many(rfc1929String, { empty: "must not be empty; omit it to match any user" })
      .optional(),
    commands: many(z.enum(RULE_COMMANDS), {
      empty: "must not be empty; omit it to match any command",
    }).optional(),
  })
  .transform((value): RuleConfig => ({
    action: value.action,
    ...(value.from && { from: value.from }),
    ...(value.to && { to: value.to }),
    ...(value.ports && { ports: value.ports }),
    ...(value.users && { users: value.users }),
    ...(value.commands && { commands: value.commands }),
  }));

/** The options a hop URL takes in its query, and their values. */
function hopUrlOptions(query: string): Parsed<{ proxyProtocol?: "v2" }> {
  const params = new URLSearchParams(query);
  for (const key of new Set(params.keys())) {
    if (key !== "proxy_protocol") {
      return { ok: false, reason: `"?${key}": unknown option (only proxy_protocol=v2)` };
    }
  }
  const values = params.getAll("proxy_protocol");
  if (values.length === 0) return { ok: true, value: {} };
  if (values.length > 1 || values[0] !== "v2") {
    return { ok: false, reason: "proxy_protocol must be v2 (given once)" };
  }
  return { ok: true, value: { proxyProtocol: "v2" } };
}

/**
 * A hop gateway URL: `socks5://[USER:PASS@]HOST:PORT[?proxy_protocol=v2]`, HOST a name or an IP
 * literal.
 */
const hopUrl = parsedString((text): Parsed<HopEndpoint> => {
  const written = text.trim();
  const at = written.indexOf("?");
  const trimmed = at < 0 ? written : written.slice(0, at);
  const options = hopUrlOptions(at < 0 ? "" : written.slice(at + 1));
  if (!options.ok) return options;
  try {
    const parsed = parseGatewayUrl(trimmed);
    const host = parsed.address ? formatIp(parsed.address) : parsed.hostname;
    const shown = parsed.address?.family === 6 ? `[${host}]` : host;
    return {
      ok: true,
      value: {
        host,
        port: parsed.port,
        label: `socks5://${shown}:${parsed.port}`,
        ...(parsed.credentials && { credentials: parsed.credentials }),
        ...options.value,
      },
    };
  } catch (error) {
    const reason = errorText(error);
    // The parser quotes the URL as written: never show its password (config errors are printed
    // and logged).
    return {
      ok: false,
      reason: reason.replace(/^Cannot parse gateway URL /, "")
        .replaceAll(trimmed, redactUrlPassword(trimmed)),
    };
  }
});

/** The settings of a hop given as a URL or a list, and the defaults of the `{ any }` form. */
const HOP_DEFAULTS = { strategy: "failover", max_fails: 1, fail_timeout: 30 } as const;

function hopConfig(
  alternatives: HopEndpoint[],
  settings: { strategy: HopConfig["strategy"]; max_fails: number; fail_timeout: number },
): HopConfig {
  return {
    alternatives,
    strategy: settings.strategy,
    maxFails: settings.max_fails,
    failTimeoutMs: Math.max(1, Math.round(settings.fail_timeout * 1000)),
  };
}

/**
 * A hop: one URL, a list of alternatives, or
 * `{ any: [...], strategy, max_fails, fail_timeout, proxy_protocol }`.
 */
const hop = byForm<HopConfig>({
  string: hopUrl.transform((endpoint) => hopConfig([endpoint], HOP_DEFAULTS)),
  array: z.array(hopUrl).min(1, "must list at least one gateway").transform((alternatives) =>
    hopConfig(alternatives, HOP_DEFAULTS)
  ),
  object: z.strictObject({
    any: many(hopUrl, { empty: "must list at least one gateway" }),
    strategy: z.enum(HOP_STRATEGIES).default(HOP_DEFAULTS.strategy),
    max_fails: positiveInteger.default(HOP_DEFAULTS.max_fails),
    fail_timeout: seconds.default(HOP_DEFAULTS.fail_timeout),
    proxy_protocol: z.literal("v2").optional(),
  }).transform((value) =>
    hopConfig(
      value.proxy_protocol
        ? value.any.map((endpoint): HopEndpoint => ({ ...endpoint, proxyProtocol: "v2" }))
        : value.any,
      value,
    )
  ),
}, "a gateway URL, a list of them, or { any: [...], strategy, proxy_protocol }");

const route = z.strictObject({
  to: many(destination, {
    empty: 'must list at least one destination; omit it (or use "*") for all',
  })
    .default([{ kind: "any" }]),
  ports: many(portRange, { empty: "must not be empty; omit it to match any port" }).optional(),
  chain: many(hop, { empty: "must list at least one hop" }).optional(),
  ...egressFields,
}).superRefine((value, ctx) => {
  for (const issue of egressIssues(value)) ctx.addIssue({ code: "custom", ...issue });
  const egress = egressConfig(value);
  if (!value.chain && !egress) {
    ctx.addIssue({
      code: "custom",
      message: "needs chain (gateways to go through) or egress/egress_prefix (source addresses)",
      path: ["chain"],
    });
  }
  if (!egress) return;
  // The families this route certainly dials: the first hop's literals, or the CIDRs of `to`.
  const needs = value.chain
    ? value.chain[0]!.alternatives.flatMap((endpoint) => {
      const address = parseIp(endpoint.host);
      return address ? [{ family: address.family, what: `the first hop ${endpoint.label}` }] : [];
    })
    : value.to.flatMap((pattern) =>
      pattern.kind === "cidr"
        ? [{ family: pattern.cidr.network.family, what: `destination ${formatCidr(pattern.cidr)}` }]
        : []
    );
  for (const { family, what } of needs) {
    if (!egressHas(egress, family)) {
      ctx.addIssue({
        code: "custom",
        message: `has no IPv${family} source address for ${what}`,
        path: [value.egress ? "egress" : "egress_prefix"],
      });
    }
  }
}).transform((value): RouteConfig => {
  const egress = egressConfig(value);
  return {
    to: value.to,
    chain: value.chain ?? [],
    ...(value.ports && { ports: value.ports }),
    ...(egress && { egress }),
  };
});

/** An IP address of one family, parsed once here. */
function addressOf(family: 4 | 6) {
  return parsedString((text): Parsed<IpAddress> => {
    const address = parseIp(text.trim());
    if (!address) return { ok: false, reason: `"${text}" is not an IP address` };
    if (address.family !== family) {
      return { ok: false, reason: `"${text}" is not an IPv${family} address` };
    }
    return { ok: true, value: address };
  });
}

/** `{ v4: IP, v6: IP }`, both optional. */
const perFamily = section({ v4: addressOf(4).optional(), v6: addressOf(6).optional() })
  .transform((value): AddressPerFamily => ({
    ...(value.v4 && { v4: value.v4 }),
    ...(value.v6 && { v6: value.v6 }),
  }));

/** The largest UDP payload over IPv4 (65535 - 8 - 20). */
const MAX_UDP_PAYLOAD = 65_507;

const ms = (s: number) => Math.max(1, Math.round(s * 1000));

/** The YAML document: every key optional; the output is the typed {@linkcode Config}. */
export const configSchema: z.ZodType<Config> = z
  .preprocess(
    (value) => value ?? {},
    z.strictObject({
      listen: listen.prefault([...DEFAULT_LISTEN]),
      auth: section({ users: users.prefault([]) }),
      resolver: section({
        prefer: z.enum(FAMILY_PREFERENCES).default("happy-eyeballs"),
        hosts: hosts.prefault({}),
        hosts_file: z.string().default("/etc/hosts"), // "" turns the hosts file off
        servers: many(parsedString(parseServer)).default([]),
        timeout: seconds.default(5),
        cache_size: nonNegativeInteger.default(10_000),
        max_ttl: nonNegativeInteger.default(300),
        negative_ttl: nonNegativeInteger.default(30),
        // Default by `workers` (below): the table lives in one isolate.
        stand_ins: z.enum(STAND_IN_MODES).optional(),
      }),
      rules: many(rule, { empty: "must not be empty; omit it for the defaults" }).optional(),
      timeouts: section({
        handshake: seconds.default(10),
        connect: seconds.default(10),
        idle: seconds.default(300),
        drain: seconds.default(10),
      }),
      limits: section({
        max_connections: positiveInteger.default(4096),
        max_connections_per_client: positiveInteger.default(512),
        auth_failures_per_minute: positiveInteger.default(10),
        ipv6_client_prefix: numberWhere(
          (n) => Number.isSafeInteger(n) && n >= 48 && n <= 128,
          "must be an integer from 48 to 128",
        ).default(64),
        per_user: userLimitsSchema,
      }),
      udp: section({
        public_address: perFamily,
        idle: seconds.default(120),
        max_datagram: numberWhere(
          (n) => Number.isSafeInteger(n) && n >= 11 && n <= MAX_UDP_PAYLOAD,
          `must be an integer from 11 to ${MAX_UDP_PAYLOAD}`,
        ).default(MAX_UDP_PAYLOAD),
        rate: positiveInteger.default(100_000),
        total_rate: positiveInteger.default(1_000_000),
      }),
      bind: section({
        external_address: perFamily,
        wait: seconds.default(120),
      }),
      log: section({
        level: z.enum(["debug", "info", "warning", "error"]).default("info"),
        format: z.enum(["text", "json"]).default("text"),
        audit: z.strictObject({
          file: z.string().min(1, "must be a file path"),
        }).optional(),
      }),
      routes: many(route).default([]),
      translators: many(translatorConfigSchema()).default([]),
      admin: z.preprocess(
        (value) => value ?? {},
        z.strictObject({
          listen: listenAddress.prefault(DEFAULT_ADMIN_LISTEN),
          auth: adminAuth.optional(),
        }),
      ).optional(),
      workers: z.preprocess((value, ctx) => {
        if (value === "auto") return autoWorkerCount();
        if (typeof value === "string") {
          ctx.addIssue({ code: "custom", message: "must be a positive integer or auto" });
          return z.NEVER;
        }
        return value;
      }, positiveInteger.default(1)),
      reload: section({ recheck: z.boolean().default(false) }),
    }),
  )
  .superRefine((value, ctx) => {
    if (value.workers > 1 && value.resolver.stand_ins === "cross-family") {
      ctx.addIssue({
        code: "custom",
        message: "cross-family needs workers: 1 — the stand-in table lives in one isolate " +
          "(a CONNECT may reach another worker than its RESOLVE)",
        path: ["resolver", "stand_ins"],
      });
    }
    if (value.workers > 1 && value.translators.length > 0) {
      ctx.addIssue({
        code: "custom",
        message: "translators need workers: 1 — the FTP data-connection table lives in one isolate",
        path: ["workers"],
      });
    }
    // Per-user limits and the audit file live in one isolate: refused, not divided.
    if (value.workers > 1 && !isUnlimited(mergeUserLimits(value.limits.per_user))) {
      ctx.addIssue({
        code: "custom",
        message: "per-user limits need workers: 1 — a user's connections, buckets and quota " +
          "live in one isolate",
        path: ["limits", "per_user"],
      });
    }
    value.auth.users.forEach((entry, index) => {
      if (value.workers > 1 && entry.written !== undefined) {
        ctx.addIssue({
          code: "custom",
          message: "per-user limits need workers: 1 — a user's connections, buckets and " +
            "quota live in one isolate",
          path: ["auth", "users", index, "limits"],
        });
      }
    });
    if (value.workers > 1 && value.log.audit !== undefined) {
      ctx.addIssue({
        code: "custom",
        message: "the audit log needs workers: 1 — one isolate writes and reopens the file",
        path: ["log", "audit", "file"],
      });
    }
    for (const issue of selfHopIssues(value.listen, value.routes)) {
      ctx.addIssue({ code: "custom", ...issue });
    }
    if (value.admin && !value.admin.auth && !isLoopback(value.admin.listen.address)) {
      ctx.addIssue({
        code: "custom",
        message: `${formatIp(value.admin.listen.address)} is not a loopback address: set ` +
          "admin.auth (a token or the users' credentials) or listen on loopback",
        path: ["admin", "listen"],
      });
    }
    if (value.admin?.auth?.users && value.auth.users.length === 0) {
      ctx.addIssue({
        code: "custom",
        message: "users: true needs users in auth.users",
        path: ["admin", "auth", "users"],
      });
    }
    const known = new Set(value.auth.users.map((entry) => entry.name));
    value.rules?.forEach((entry, index) => {
      entry.users?.forEach((name, at) => {
        if (!known.has(name)) {
          ctx.addIssue({
            code: "custom",
            message: `"${name}" is not a user in auth.users`,
            path: ["rules", index, "users", at],
          });
        }
      });
    });
  })
  .transform((value): Config => ({
    listen: value.listen,
    auth: {
      users: value.auth.users.map(({ written, ...entry }): UserConfig => ({
        ...entry,
        ...(written !== undefined && {
          limits: mergeUserLimits(written, mergeUserLimits(value.limits.per_user)),
        }),
      })),
    },
    resolver: {
      prefer: value.resolver.prefer,
      hosts: value.resolver.hosts,
      hostsFile: value.resolver.hosts_file,
      servers: value.resolver.servers,
      timeoutMs: ms(value.resolver.timeout),
      cacheSize: value.resolver.cache_size,
      maxTtlSeconds: value.resolver.max_ttl,
      negativeTtlSeconds: value.resolver.negative_ttl,
      standIns: value.resolver.stand_ins ?? (value.workers > 1 ? "never" : "cross-family"),
    },
    rules: value.rules ?? null,
    timeouts: {
      handshakeMs: ms(value.timeouts.handshake),
      connectMs: ms(value.timeouts.connect),
      idleMs: ms(value.timeouts.idle),
      drainMs: ms(value.timeouts.drain),
    },
    limits: {
      maxConnections: value.limits.max_connections,
      maxConnectionsPerClient: value.limits.max_connections_per_client,
      authFailuresPerMinute: value.limits.auth_failures_per_minute,
      ipv6ClientPrefix: value.limits.ipv6_client_prefix,
      perUser: mergeUserLimits(value.limits.per_user),
    },
    udp: {
      publicAddress: value.udp.public_address,
      idleMs: ms(value.udp.idle),
      maxDatagram: value.udp.max_datagram,
      rate: value.udp.rate,
      totalRate: value.udp.total_rate,
    },
    bind: {
      externalAddress: value.bind.external_address,
      waitMs: ms(value.bind.wait),
    },
    routes: value.routes,
    translators: value.translators,
    admin: value.admin
      ? {
        endpoint: value.admin.listen,
        ...(value.admin.auth && {
          auth: {
            ...(value.admin.auth.token_file !== undefined &&
              { tokenFile: value.admin.auth.token_file }),
            ...(value.admin.auth.token_sha256 !== undefined &&
              { tokenSha256: value.admin.auth.token_sha256 }),
            users: value.admin.auth.users,
          },
        }),
      }
      : null,
    log: {
      level: value.log.level,
      format: value.log.format,
      ...(value.log.audit && { auditFile: value.log.audit.file }),
    },
    workers: value.workers,
    reload: { recheck: value.reload.recheck },
  }));
