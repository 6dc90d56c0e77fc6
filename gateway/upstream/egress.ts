/**
 * Egress address pools: which source address an outbound connection (or UDP socket) uses.
 *
 * A pool is a list of addresses (`egress: [ADDR, ...]`, either family) and/or one IPv6 prefix
 * to draw from (`egress_prefix`), with a policy:
 * - `per_connection`: round robin over the list of the family; a random address of the prefix.
 * - `sticky_user`: the SHA-256 of the user name (the client address when there is no user)
 *   picks the address, so one user always leaves from the same one.
 * - `sticky_destination`: the same, keyed by the destination as requested (name or address).
 *
 * A family the pool has no address for has no source: such destinations are never dialed
 * (the dialers answer REP 3 with a reason that says so).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "../../net/cidr.ts";
 * import { formatIp } from "../../net/address.ts";
 * import { EgressPool } from "./egress.ts";
 *
 * const pool = new EgressPool({
 *   addresses: [],
 *   prefix: parseCidr("2001:db8:5::/64"),
 *   policy: "sticky_user",
 * });
 * const key = { user: "alice", destination: "example.org" };
 * const a = pool.source(6, key)!;
 * assert.equal(formatIp(a).startsWith("2001:db8:5:0:"), true);
 * assert.equal(formatIp(pool.source(6, key)!), formatIp(a));
 * assert.equal(pool.source(4, key), null);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { formatIp, type IpAddress } from "../../net/address.ts";
import type { Cidr } from "../../net/cidr.ts";
import { literalAddress, normalizeName } from "../../resolver/mod.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import type { EgressConfig, UserConfig } from "../config/types.ts";

/** What a sticky policy is keyed on. */
export interface EgressKey {
  /** The authenticated user, if any. */
  readonly user?: string;
  /** The client address, formatted: the `sticky_user` key when there is no user. */
  readonly client?: string;
  /** The destination as requested (a normalised name or a formatted address). */
  readonly destination: string;
}

/** Picks the source address of one family for one dial; `null` when the family has none. */
export type EgressSource = (family: 4 | 6) => IpAddress | null;

/** Fills `bytes` with random bytes (a test hook). */
export type RandomFill = (bytes: Uint8Array) => void;

/** A compiled egress configuration. */
export class EgressPool {
  readonly #config: EgressConfig;
  readonly #lists: Readonly<Record<4 | 6, readonly IpAddress[]>>;
  readonly #next: Record<4 | 6, number> = { 4: 0, 6: 0 };
  readonly #random: RandomFill;

  /** Compiles `config` (already validated by the config schema). */
  constructor(config: EgressConfig, random: RandomFill = (b) => crypto.getRandomValues(b)) {
    this.#config = config;
    this.#lists = {
      4: config.addresses.filter((a) => a.family === 4),
      6: config.addresses.filter((a) => a.family === 6),
    };
    this.#random = random;
  }

  /** The policy. */
  get policy(): EgressConfig["policy"] {
    return this.#config.policy;
  }

  /** The IPv6 prefix addresses are drawn from, if any. */
  get prefix(): Cidr | undefined {
    return this.#config.prefix;
  }

  /** True when the pool has a source address of `family`. */
  has(family: 4 | 6): boolean {
    return this.#lists[family].length > 0 || this.#config.prefix?.network.family === family;
  }

  /** The source address of `family` for a connection keyed by `key`, or `null`. */
  source(family: 4 | 6, key: EgressKey): IpAddress | null {
    const prefix = this.#config.prefix;
    const list = this.#lists[family];
    const policy = this.#config.policy;
    if (prefix !== undefined && prefix.network.family === family) {
      if (policy === "per_connection") {
        const bytes = new Uint8Array(16);
        this.#random(bytes);
        return addressInPrefix(prefix, bytes);
      }
      return addressInPrefix(prefix, digest(policy, key));
    }
    if (list.length === 0) return null;
    if (list.length === 1) return list[0]!;
    if (policy === "per_connection") {
      const at = this.#next[family];
      this.#next[family] = (at + 1) % list.length;
      return list[at]!;
    }
    const hash = digest(policy, key);
    const index = new DataView(hash.buffer, hash.byteOffset).getUint32(0) % list.length;
    return list[index]!;
  }

  /**
   * A source picker for one dial: each family is picked once (every attempt of the dial, and
   * every datagram of an association, leaves from the same address).
   */
  selection(key: EgressKey): EgressSource {
    const picked: Partial<Record<4 | 6, IpAddress | null>> = {};
    return (family) => {
      if (!(family in picked)) picked[family] = this.source(family, key);
      return picked[family]!;
    };
  }
}

/** The SHA-256 of the sticky key: the user (or client) or the destination. */
function digest(policy: EgressConfig["policy"], key: EgressKey): Uint8Array {
  const text = policy === "sticky_user"
    ? (key.user !== undefined ? `user:${key.user}` : `client:${key.client ?? ""}`)
    : `destination:${key.destination}`;
  return new Uint8Array(createHash("sha256").update(text).digest());
}

/**
 * The address of `prefix` whose host bits are taken from `bits` (16 bytes or more). An all-zero
 * host part (the subnet-router anycast address) becomes host 1.
 */
export function addressInPrefix(prefix: Cidr, bits: Uint8Array): IpAddress {
  const { network, prefixLength } = prefix;
  const bytes = network.bytes.slice();
  const total = bytes.length * 8;
  let zero = true;
  for (let bit = prefixLength; bit < total; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (bits[bit >> 3]! & mask) {
      bytes[bit >> 3]! |= mask;
      zero = false;
    }
  }
  if (zero && prefixLength < total) bytes[bytes.length - 1]! |= 1;
  return { family: network.family, bytes };
}

/** The pools of the users that have egress keys, by name. */
export function userEgressPools(users: readonly UserConfig[]): ReadonlyMap<string, EgressPool> {
  return new Map(
    users.flatMap((user) => user.egress ? [[user.name, new EgressPool(user.egress)]] : []),
  );
}

/** Who asks: the authenticated user (if any) and the client address. */
export interface EgressRequester {
  /** The user after RFC 1929, if any. */
  readonly user?: string | undefined;
  /** The client's address. */
  readonly client: IpAddress;
}

/** The sticky keys of a request: the user (else the client) and the destination as requested. */
export function egressKeyOf(target: SocksTarget, requester: EgressRequester): EgressKey {
  const a = target.address;
  const literal = a.family === "name" ? literalAddress(a.name) : a;
  const destination = literal
    ? formatIp(literal)
    : a.family === "name"
    ? normalizeName(a.name) ?? a.name
    : "";
  const user = requester.user;
  return { ...(user !== undefined && { user }), client: formatIp(requester.client), destination };
}

/** The pool a request uses: the user's own (from `userPools`), else `routePool`, else none. */
export function egressPoolFor(
  routePool: EgressPool | undefined,
  user: {
    readonly name?: string | undefined;
    readonly pools?: ReadonlyMap<string, EgressPool> | undefined;
  },
): EgressPool | undefined {
  return (user.name !== undefined ? user.pools?.get(user.name) : undefined) ?? routePool;
}
