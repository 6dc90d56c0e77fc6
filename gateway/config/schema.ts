/**
 * The zod schema of the YAML config form. It validates the snake_case document, parses every
 * string that names an address, prefix, port or pattern into its typed value (once, here at the
 * edge), fills in defaults, and outputs the typed {@linkcode Config}.
 *
 * Issue paths are the YAML key paths (`rules[0].from[1]`); `load.ts` turns the first issue into
 * a `ConfigError`.
 *
 * @module
 */

import { z } from "zod";
import { formatIp, parseIp } from "../../net/address.ts";
import { type Cidr, parseCidr } from "../../net/cidr.ts";
import { normalizeName, type Parsed, parseListenAddress, parseServer } from "./_parse.ts";
import { parsePasswordHash } from "./password.ts";
import type {
  Config,
  DestinationPattern,
  FamilyPreference,
  ListenConfig,
  RuleCommand,
  RuleConfig,
  UserConfig,
} from "./types.ts";

/** The `listen` addresses used when neither the file nor the flags give any. */
export const DEFAULT_LISTEN: readonly string[] = ["127.0.0.1:1080", "[::1]:1080"];

/** The largest timeout in seconds: timers overflow past 2³¹−1 ms (about 24.8 days). */
const MAX_SECONDS = 2_147_483;

const FAMILY_PREFERENCES = [
  "happy-eyeballs",
  "ipv6",
  "ipv4",
  "ipv6-only",
  "ipv4-only",
] as const satisfies readonly FamilyPreference[];
const RULE_COMMANDS = ["connect", "bind", "udp"] as const satisfies readonly RuleCommand[];

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

/** A strict mapping (unknown keys are errors); an empty (`null`) section means all defaults. */
function section<T extends Record<string, z.ZodType>>(shape: T) {
  return z.preprocess((value) => value ?? {}, z.strictObject(shape));
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
    const reason = error instanceof Error ? error.message : String(error);
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
 * A destination pattern: a CIDR (or a bare address), `*.suffix` (any name ending in
 * `.suffix`, not `suffix` itself), or an exact name. Names are lower case without a trailing dot.
 */
const destination = parsedString((raw): Parsed<DestinationPattern> => {
  const text = raw.trim();
  if (text.includes("/") || parseIp(text)) {
    try {
      return { ok: true, value: { kind: "cidr", cidr: parseCidr(text) } };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return { ok: false, reason: reason.replace(/^Cannot parse CIDR: /, "") };
    }
  }
  if (text.startsWith("*.")) {
    const suffix = normalizeName(text.slice(2));
    return suffix.ok ? { ok: true, value: { kind: "suffix", suffix: suffix.value } } : suffix;
  }
  if (text.includes("*")) {
    return { ok: false, reason: `"${raw}": a wildcard is allowed only as a leading "*."` };
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
  })
  .superRefine((value, ctx) => {
    if ((value.password === undefined) === (value.password_hash === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: value.password === undefined
          ? "must have password or password_hash"
          : "must have exactly one of password and password_hash, not both",
      });
    }
  })
  .transform((value): UserConfig =>
    value.password !== undefined
      ? { name: value.name, password: value.password }
      : { name: value.name, passwordHash: value.password_hash! }
  );

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

const listen = many(parsedString(parseListenAddress), { empty: "must list at least one address" })
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((endpoint, index) => {
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

/** A key kept only to say it is not built yet, instead of "unknown key". */
const notYet = z.unknown().superRefine((value, ctx) => {
  if (value !== undefined) {
    ctx.addIssue({ code: "custom", message: "not supported by this version yet" });
  }
}).optional();

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
        hosts_file: z.string().min(1, "must not be empty").default("/etc/hosts"),
        servers: many(parsedString(parseServer)).default([]),
        timeout: seconds.default(5),
        cache_size: nonNegativeInteger.default(10_000),
        max_ttl: nonNegativeInteger.default(300),
        negative_ttl: nonNegativeInteger.default(30),
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
      }),
      log: section({
        level: z.enum(["debug", "info", "warning", "error"]).default("info"),
        format: z.enum(["text", "json"]).default("text"),
      }),
      routes: notYet,
      translators: notYet,
    }),
  )
  .superRefine((value, ctx) => {
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
    listen: value.listen.map((endpoint): ListenConfig => ({ endpoint })),
    auth: { users: value.auth.users },
    resolver: {
      prefer: value.resolver.prefer,
      hosts: value.resolver.hosts,
      hostsFile: value.resolver.hosts_file,
      servers: value.resolver.servers,
      timeoutMs: ms(value.resolver.timeout),
      cacheSize: value.resolver.cache_size,
      maxTtlSeconds: value.resolver.max_ttl,
      negativeTtlSeconds: value.resolver.negative_ttl,
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
    },
    log: value.log,
  }));
