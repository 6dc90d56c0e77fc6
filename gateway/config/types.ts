/**
 * The validated, typed configuration: what the YAML file and CLI flags both become.
 * Types only; `load.ts` builds these values and is the one validation path.
 *
 * @module
 */

import type { IpAddress, IpEndpoint } from "../../net/address.ts";
import type { Cidr } from "../../net/cidr.ts";
import type { FamilyPreference, ResolverConfig, StandInMode } from "../../resolver/options.ts";
import type { TranslatorConfig } from "../../translators/types.ts";
import type { HopStrategy } from "../../client/selector.ts";

// The resolver owns its options; the configuration names them under `resolver:`.
export type { FamilyPreference, ResolverConfig, StandInMode };

/** PROXY protocol versions a listener accepts in front of SOCKS (HAProxy `send-proxy[-v2]`). */
export type ProxyProtocolMode = "v1" | "v2" | "any";

/** One listening socket. */
export interface ListenConfig {
  /** Address and port to bind (`192.0.2.10:1080`, `[2001:db8::10]:1080`). */
  readonly endpoint: IpEndpoint;
  /**
   * When set, every connection must start with a PROXY protocol header of this version; the
   * client address it carries is the one rules and logs see. Connections without it are closed.
   */
  readonly proxyProtocol?: ProxyProtocolMode;
  /**
   * Sources allowed to send the PROXY header (the TCP peer, IPv4-mapped addresses read as
   * IPv4); others are closed before anything is read. Absent: loopback only. Set only with
   * `proxyProtocol`.
   */
  readonly trustedProxies?: readonly Cidr[];
  /**
   * What clients speak: `socks5`, `http` (an HTTP/1.1 proxy: CONNECT and absolute-form
   * requests), or `mixed` (told apart by the first byte). @default "socks5"
   */
  readonly protocol?: ListenProtocol;
}

/** What a listener speaks (see {@linkcode ListenConfig.protocol}). */
export type ListenProtocol = "socks5" | "http" | "mixed";

/** An RFC 1929 user. Exactly one of `password` and `passwordHash` is set. */
export interface UserConfig {
  /** User name, 1..255 bytes. */
  readonly name: string;
  /** Plain-text password (1..255 bytes), if given so. */
  readonly password?: string;
  /** `scrypt$N$r$p$SALT_B64$HASH_B64`, if given so. */
  readonly passwordHash?: string;
  /**
   * The user's limits: its `limits` over `limits.per_user`, key by key. Absent: those of
   * `limits.per_user`.
   */
  readonly limits?: UserLimitsConfig;
  /** Source addresses of this user's outbound connections; over the route's. */
  readonly egress?: EgressConfig;
}

/** Periods a byte quota can have; each starts at its UTC boundary (hour, midnight, Monday, 1st). */
export type QuotaPeriod = "hour" | "day" | "week" | "month";

/** A byte quota: bytes both ways together per period. */
export interface QuotaConfig {
  /** Bytes allowed per period, both directions together. */
  readonly bytes: number;
  /** The period. */
  readonly period: QuotaPeriod;
}

/** Per-user limits; `null` means unlimited. */
export interface UserLimitsConfig {
  /** Simultaneous connections (sessions past authentication) of the user. @default null */
  readonly maxConnections: number | null;
  /** Bytes per second client to destination, all the user's relays together. @default null */
  readonly up: number | null;
  /** Bytes per second destination to client, all the user's relays together. @default null */
  readonly down: number | null;
  /** Byte quota per period. @default null */
  readonly quota: QuotaConfig | null;
}

/** How an egress pool picks a source address. */
export type EgressPolicy = "per_connection" | "sticky_user" | "sticky_destination";

/** Source addresses for outbound connections (`egress`, `egress_prefix`, `egress_policy`). */
export interface EgressConfig {
  /** Addresses of either family (no IPv6 one when `prefix` is set); may be empty with a prefix. */
  readonly addresses: readonly IpAddress[];
  /** An IPv6 prefix to draw IPv6 sources from. */
  readonly prefix?: Cidr;
  /** The policy. @default "per_connection" */
  readonly policy: EgressPolicy;
}

/** Authentication: with users present, RFC 1929 is required. */
export interface AuthConfig {
  /** The users; empty means no authentication. */
  readonly users: readonly UserConfig[];
}

/** Commands a rule can name (`resolve`: Tor's RESOLVE and RESOLVE_PTR). */
export type RuleCommand = "connect" | "bind" | "udp" | "resolve";

/**
 * A destination matcher as written: a CIDR, an exact name, a `*.suffix` wildcard, or `*` (every
 * destination, names and addresses).
 */
export type DestinationPattern =
  | { readonly kind: "any" }
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
  /** Maximum simultaneous connections per client (see `ipv6ClientPrefix`). @default 512 */
  readonly maxConnectionsPerClient: number;
  /** Failed RFC 1929 logins allowed per client per minute before it is refused. @default 10 */
  readonly authFailuresPerMinute: number;
  /**
   * What one client is for the per-client limits: an IPv4 address, or the IPv6 prefix of this
   * length (48..128) holding the address. @default 64
   */
  readonly ipv6ClientPrefix: number;
  /** Limits of each RFC 1929 user, unless its own `limits` say otherwise. @default unlimited */
  readonly perUser: UserLimitsConfig;
}

/** A gateway address per family; either may be absent. */
export interface AddressPerFamily {
  /** The IPv4 address. */
  readonly v4?: IpAddress;
  /** The IPv6 address. */
  readonly v6?: IpAddress;
}

/** UDP ASSOCIATE: where clients send datagrams, and per-association limits. */
export interface UdpConfig {
  /**
   * Replaces BND.ADDR in the reply, per family of the address the client reached (for a
   * gateway behind NAT). Absent: the address the client reached. @default {}
   */
  readonly publicAddress: AddressPerFamily;
  /** An association without datagrams either way for this long ends. @default 120000 */
  readonly idleMs: number;
  /** Largest datagram accepted from the client (header included) or from a peer. @default 65507 */
  readonly maxDatagram: number;
  /**
   * Datagrams per second per client (all its associations; an IPv4 address or an IPv6
   * `limits.ipv6ClientPrefix`) in each direction: a flood limit. @default 100000
   */
  readonly rate: number;
  /** Datagrams per second across all associations in each direction: a flood limit. @default 1000000 */
  readonly totalRate: number;
}

/** BIND: the address announced to the expected peer, and how long to wait for it. */
export interface BindConfig {
  /**
   * BND.ADDR of the first reply, per family of the expected peer (for a gateway behind NAT);
   * the listener then binds the family's wildcard. Absent: the local address that reaches the
   * peer. @default {}
   */
  readonly externalAddress: AddressPerFamily;
  /** How long to wait for the peer's connection before a failure reply. @default 120000 */
  readonly waitMs: number;
}

/** One upstream SOCKS5 gateway of a hop. */
export interface HopEndpoint {
  /** Host as written: a name, or an IP literal without brackets. */
  readonly host: string;
  /** Port. */
  readonly port: number;
  /** RFC 1929 credentials for this hop. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** `socks5://host:port`, credentials left out: for logs. */
  readonly label: string;
  /**
   * Send a PROXY v2 header naming the SOCKS client before the greeting (`?proxy_protocol=v2`),
   * so that the hop's rules, host-local protection and logs see the real client; the hop's
   * listener must take PROXY headers from this gateway.
   */
  readonly proxyProtocol?: "v2";
}

/** How a hop picks among its alternatives (defined with the selector, in the Socks Lib). */
export type { HopStrategy };

/** One hop of a chain: one or more alternative gateways. */
export interface HopConfig {
  /** The alternatives, in order. */
  readonly alternatives: readonly HopEndpoint[];
  /** Selection among alternatives. @default "failover" */
  readonly strategy: HopStrategy;
  /** Failures in a row that mark an alternative down. @default 1 */
  readonly maxFails: number;
  /** How long a marked alternative is skipped. @default 30000 */
  readonly failTimeoutMs: number;
}

/** A route: destinations that go through a chain of gateways instead of directly. */
export interface RouteConfig {
  /**
   * Destination patterns (names match names; CIDRs match literal addresses; `*` matches every
   * destination). Absent in the file: `[*]`.
   */
  readonly to: readonly DestinationPattern[];
  /** Destination ports; absent means any. */
  readonly ports?: readonly { readonly from: number; readonly to: number }[];
  /** The hops, first to last; the last one resolves names. Empty: direct (with `egress`). */
  readonly chain: readonly HopConfig[];
  /** Source addresses of the route's connections (of the first hop's, for a chain). */
  readonly egress?: EgressConfig;
}

/** The optional admin listener (metrics and health). */
export interface AdminConfig {
  /** Where it listens (loopback by default). */
  readonly endpoint: IpEndpoint;
  /** Credentials required on every path but `/healthz`. @default none (loopback only) */
  readonly auth?: AdminAuthConfig;
}

/** `admin.auth`: a bearer token and/or the RFC 1929 users' credentials over HTTP Basic. */
export interface AdminAuthConfig {
  /** A file holding the token (read at start; one trailing newline dropped). */
  readonly tokenFile?: string;
  /** The token's SHA-256, lower-case hex. */
  readonly tokenSha256?: string;
  /** The users of `auth.users` may log in with HTTP Basic. */
  readonly users: boolean;
}

/** Logging. */
export interface LogConfig {
  /** Lowest level written. @default "info" */
  readonly level: "debug" | "info" | "warning" | "error";
  /** Line format. @default "text" */
  readonly format: "text" | "json";
  /**
   * A file that gets one JSON line per finished connection (the audit log), beside the log
   * lines on stderr; reopened on SIGUSR1. @default none
   */
  readonly auditFile?: string;
}

/** What a config reload (SIGHUP, `POST /reload`) does to live sessions. */
export interface ReloadConfig {
  /**
   * Close live sessions that the reloaded rules would refuse (else only sessions whose user
   * was removed or whose password changed are closed). @default false
   */
  readonly recheck: boolean;
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
  /** UDP ASSOCIATE. */
  readonly udp: UdpConfig;
  /** BIND. */
  readonly bind: BindConfig;
  /** Chained routes, first match wins; no match dials directly. */
  readonly routes: readonly RouteConfig[];
  /** Protocol translators, in config order, validated by the translator registry. */
  readonly translators: readonly TranslatorConfig[];
  /** Admin listener for metrics and health, or `null`. */
  readonly admin: AdminConfig | null;
  /** Logging. */
  readonly log: LogConfig;
  /**
   * Isolates (threads) serving clients, all listening on every `listen` address with
   * SO_REUSEPORT. Above 1, the limits are divided among them and `translators` are refused.
   * @default 1
   */
  readonly workers: number;
  /** Config reload. */
  readonly reload: ReloadConfig;
}
