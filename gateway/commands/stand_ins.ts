/**
 * Stand-in addresses (RFC 3089 §3's fake addresses, on the gateway side): a RESOLVE from a
 * client of family X for a name whose usable addresses are all of the other family answers with
 * a stand-in address of family X, which a later CONNECT (or RESOLVE_PTR) maps back to the name.
 * torsocks needs it: it takes only IPv4 answers, so an IPv6-only name is out of its reach
 * without one.
 *
 * The table is the Socks Lib's {@linkcode DelegationTable} (IPv4 `198.18.0.0/15`, IPv6
 * `100::/64`), with one scope per client key (an IPv4 address or an IPv6 /64, see
 * `client_key.ts`, so the addresses of one /64 are one client) and RFC 1929 user:
 *
 * - A stand-in maps back only for the client and user that received it: another client, or
 *   another user behind the same address, cannot use it, learn its name (RESOLVE_PTR), or make
 *   it point elsewhere (one allocation cursor for all clients, so an address is never in two
 *   entries at once).
 * - Bounded: {@linkcode STAND_IN_LIMITS}: entries per family in all, entries per client (a
 *   client that floods RESOLVE loses its own oldest entries, not others'), idle expiry; a full
 *   table evicts from the client holding the most, so many flooding clients evict their own.
 * - An address of the ranges that is not in the client's scope maps to nothing: CONNECT answers
 *   REP 4 and never dials it.
 *
 * @module
 */

import { DelegationTable } from "../../client/delegation_table.ts";
import { clientKey, DEFAULT_IPV6_CLIENT_PREFIX } from "../access/client_key.ts";
import { type IpAddress, unmapIpv4 } from "../../net/address.ts";
import { literalAddress } from "../../resolver/mod.ts";
import type { SocksTarget } from "../../socks5/types.ts";

/** The bounds of the gateway's stand-in table. */
export const STAND_IN_LIMITS = {
  /** Entries per family, all clients together. */
  maxEntries: 4096,
  /** Entries per family and client address. */
  maxEntriesPerClient: 256,
  /** An entry unused this long (ms) expires. */
  idleTtlMs: 600_000,
} as const;

/** Options of {@linkcode StandIns} (tests). */
export interface StandInsOptions {
  /** @default {STAND_IN_LIMITS.maxEntries} */
  readonly maxEntries?: number;
  /** @default {STAND_IN_LIMITS.maxEntriesPerClient} */
  readonly maxEntriesPerClient?: number;
  /** @default {STAND_IN_LIMITS.idleTtlMs} */
  readonly idleTtlMs?: number;
  /** Clock. @default {Date.now} */
  readonly now?: () => number;
  /** IPv6 prefix length of one client (`limits.ipv6ClientPrefix`). @default 64 */
  readonly ipv6ClientPrefix?: number;
}

/** What the destination of a request is, seen through the stand-in table. */
export type StandInLookup =
  /** Not an address of the stand-in ranges: use the target as it is. */
  | { readonly kind: "none" }
  /** A stand-in of the client's: the request is for `target` (the name, the same port). */
  | { readonly kind: "name"; readonly target: SocksTarget; readonly standIn: IpAddress }
  /** An address of the ranges the client was not given (or that expired). */
  | { readonly kind: "unknown"; readonly address: IpAddress };

/** The gateway's stand-in table, scoped by client key and user. */
export class StandIns {
  readonly #table: DelegationTable;
  readonly #ipv6Prefix: number;

  /** Creates an empty table. */
  constructor(options: StandInsOptions = {}) {
    this.#table = new DelegationTable({
      maxEntries: options.maxEntries ?? STAND_IN_LIMITS.maxEntries,
      maxEntriesPerScope: options.maxEntriesPerClient ?? STAND_IN_LIMITS.maxEntriesPerClient,
      idleTtlMs: options.idleTtlMs ?? STAND_IN_LIMITS.idleTtlMs,
      ...(options.now ? { now: options.now } : {}),
    });
    this.#ipv6Prefix = options.ipv6ClientPrefix ?? DEFAULT_IPV6_CLIENT_PREFIX;
  }

  /**
   * The stand-in of `name` of `family` for `client` (and its RFC 1929 `user`), allocated if
   * needed.
   *
   * @throws {TypeError} when `name` is not a domain name.
   */
  assign(name: string, family: 4 | 6, client: IpAddress, user?: string): IpAddress {
    return this.#table.lookup(name, family, this.#scopeOf(client, user));
  }

  /** The name `client` (and its `user`) was given `address` for, or `undefined`. */
  nameOf(address: IpAddress, client: IpAddress, user?: string): string | undefined {
    return this.#table.resolve(unmapIpv4(address), this.#scopeOf(client, user));
  }

  /** True when `address` lies in a stand-in range (in the table or not). */
  covers(address: IpAddress): boolean {
    return this.#table.isFake(unmapIpv4(address));
  }

  /** The scope of `client`'s key and `user` (JSON: no two pairs alike). */
  #scopeOf(client: IpAddress, user: string | undefined): string {
    return JSON.stringify([clientKey(client, this.#ipv6Prefix), user ?? null]);
  }

  /** Number of entries of a family, all clients together. */
  size(family: 4 | 6): number {
    return this.#table.size(family);
  }

  /**
   * Looks a request's destination up for `client` and its `user`: an address (ATYP 1 or 4, or an IP literal sent as ATYP
   * 3, as torsocks does) in the stand-in ranges is the client's stand-in of a name, or unknown.
   */
  lookup(target: SocksTarget, client: IpAddress, user?: string): StandInLookup {
    const address = target.address.family === "name"
      ? literalAddress(target.address.name)
      : target.address;
    if (address === null || !this.covers(address)) return { kind: "none" };
    const standIn = unmapIpv4(address);
    const name = this.nameOf(standIn, client, user);
    return name === undefined
      ? { kind: "unknown", address: standIn }
      : { kind: "name", target: { address: { family: "name", name }, port: target.port }, standIn };
  }
}

/** The family a client speaks: that of its address, IPv4-mapped addresses unwrapped. */
export function clientFamily(client: IpAddress): 4 | 6 {
  return unmapIpv4(client).family;
}

/**
 * BND of a CONNECT that came through a stand-in: the gateway address the client reached (if of
 * the client's family; else the unspecified address of that family) with the outbound port. A
 * client that needed a stand-in cannot parse the other family (torsocks reads a fixed length).
 */
export function standInBound(
  local: IpAddress,
  client: IpAddress,
  port: number,
): { address: IpAddress; port: number } {
  const family = clientFamily(client);
  const reached = unmapIpv4(local);
  return reached.family === family
    ? { address: reached, port }
    : { address: { family, bytes: new Uint8Array(family === 4 ? 4 : 16) }, port };
}
