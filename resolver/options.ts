/**
 * The resolver's options: the family preference and the settings of name resolution. The
 * gateway's configuration (`gateway/config/types.ts`) takes them from here as its `resolver:`
 * section.
 *
 * @module
 */

/** Address-family preference for names with both A and AAAA records. */
export type FamilyPreference = "happy-eyeballs" | "ipv6" | "ipv4" | "ipv6-only" | "ipv4-only";

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
  /**
   * When the gateway's RESOLVE answers with a stand-in address (gateway/commands/stand_ins.ts; the
   * resolver itself does not read it): `cross-family` when the name has usable addresses only of
   * the family the client does not speak; `never`. Optional so that the resolver's callers need
   * not name it; the config schema always sets it.
   * @default "cross-family" ("never" with `workers` above 1)
   */
  readonly standIns?: StandInMode;
}

/** `resolver.stand_ins`: when RESOLVE answers with a stand-in address. */
export type StandInMode = "cross-family" | "never";
