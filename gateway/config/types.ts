/**
 * The validated, typed configuration: what the YAML file and CLI flags both become.
 * Types only; `load.ts` builds these values and is the one validation path.
 *
 * @module
 */

import type { IpEndpoint } from "../../net/address.ts";
import type { Cidr } from "../../net/cidr.ts";

/** Address-family preference for names with both A and AAAA records. */
export type FamilyPreference = "happy-eyeballs" | "ipv6" | "ipv4" | "ipv6-only" | "ipv4-only";

/** One listening socket. */
export interface ListenConfig {
  /** Address and port to bind (`192.0.2.10:1080`, `[2001:db8::10]:1080`). */
  readonly endpoint: IpEndpoint;
}

/** An RFC 1929 user. Exactly one of `password` and `passwordHash` is set. */
export interface UserConfig {
  /** User name, 1..255 bytes. */
  readonly name: string;
  /** Plain-text password (1..255 bytes), if given so. */
  readonly password?: string;
  /** `scrypt$N$r$p$SALT_B64$HASH_B64`, if given so. */
  readonly passwordHash?: string;
}

/** Authentication: with users present, RFC 1929 is required. */
export interface AuthConfig {
  /** The users; empty means no authentication. */
  readonly users: readonly UserConfig[];
}

/** Name resolution settings. */
export interface ResolverConfig {
  /** Family preference. @default "happy-eyeballs" */
  readonly prefer: FamilyPreference;
  /** Static names, consulted with the hosts file before DNS. Keys are lower case, no trailing dot. */
  readonly hosts: Readonly<Record<string, readonly string[]>>;
  /** Hosts file path. @default "/etc/hosts" */
  readonly hostsFile: string;
  /** DNS servers (`ip` or `ip:port`, `[v6]:port`); empty means the system configuration. */
  readonly servers: readonly string[];
  /** Per-query timeout in milliseconds. @default 5000 */
  readonly timeoutMs: number;
  /** Maximum cached names. @default 10000 */
  readonly cacheSize: number;
  /** Upper bound for positive cache TTL in seconds. @default 300 */
  readonly maxTtlSeconds: number;
  /** TTL for negative answers in seconds. @default 30 */
  readonly negativeTtlSeconds: number;
}

/** Commands a rule can name. */
export type RuleCommand = "connect" | "bind" | "udp";

/** A destination matcher as written: a CIDR, an exact name, or a `*.suffix` wildcard. */
export type DestinationPattern =
  | { readonly kind: "cidr"; readonly cidr: Cidr }
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "suffix"; readonly suffix: string };

/** One access rule; absent matchers match everything. */
export interface RuleConfig {
  /** What a match does. */
  readonly action: "allow" | "deny";
  /** Client address prefixes. */
  readonly from?: readonly Cidr[];
  /** Destination patterns. */
  readonly to?: readonly DestinationPattern[];
  /** Destination ports; each an inclusive range. */
  readonly ports?: readonly { readonly from: number; readonly to: number }[];
  /** Users (after RFC 1929). */
  readonly users?: readonly string[];
  /** Commands. */
  readonly commands?: readonly RuleCommand[];
}

/** Timeouts, in milliseconds. */
export interface TimeoutsConfig {
  /** Greeting + auth + request must complete within this. @default 10000 */
  readonly handshakeMs: number;
  /** Outbound connect (all attempts). @default 10000 */
  readonly connectMs: number;
  /** A relay with no traffic either way for this long is closed. @default 300000 */
  readonly idleMs: number;
  /** On SIGINT/SIGTERM, how long live relays may drain. @default 10000 */
  readonly drainMs: number;
}

/** Connection limits. */
export interface LimitsConfig {
  /** Maximum simultaneous client connections. @default 4096 */
  readonly maxConnections: number;
  /** Maximum simultaneous connections per client address. @default 512 */
  readonly maxConnectionsPerClient: number;
}

/** Logging. */
export interface LogConfig {
  /** Lowest level written. @default "info" */
  readonly level: "debug" | "info" | "warning" | "error";
  /** Line format. @default "text" */
  readonly format: "text" | "json";
}

/** The whole validated configuration. */
export interface Config {
  /** Listening sockets; never empty. */
  readonly listen: readonly ListenConfig[];
  /** Authentication. */
  readonly auth: AuthConfig;
  /** Resolver. */
  readonly resolver: ResolverConfig;
  /** Access rules, first match wins; `null` when absent (safe defaults apply). */
  readonly rules: readonly RuleConfig[] | null;
  /** Timeouts. */
  readonly timeouts: TimeoutsConfig;
  /** Limits. */
  readonly limits: LimitsConfig;
  /** Logging. */
  readonly log: LogConfig;
}
