/**
 * The delegation mapping table of RFC 3089 §3: name ↔ fake address, one pool per family.
 *
 * Default ranges, and why not the RFC's own:
 * - IPv4 `198.18.0.0/15` (RFC 2544 benchmarking, not globally reachable; what Clash, sing-box and
 *   tun2socks use). RFC 3089's `0.0.0.x` is routed by current Linux kernels like any unicast
 *   address, and Dante caps it at 255 names.
 * - IPv6 `100::/64` (RFC 6666 discard-only): the fake never leaves the process, it is only a
 *   token the preload turns back into the name before any socket opens.
 * - Not multicast (`224/4`: dig, nmap and ssh reject it), not ULA (`fc00::/7`: collides with real
 *   networks and trips browsers' private-network checks), not loopback (treated as "local").
 *
 * Entries pinned by a live connection are never reassigned; idle ones expire (TTL) and the least
 * recently used unpinned entry makes room when the table is full, so the table stays bounded.
 * Allocation walks each range with a cursor, so a freed address is not handed out again until the
 * whole range has been used: a stale fake held by a program fails fast instead of reaching
 * another name.
 *
 * Scopes (the gateway's stand-ins, one scope per client key and user): an entry belongs to the
 * scope that asked for it; `resolve` in another scope does not see it, `maxEntriesPerScope` keeps
 * one scope from filling the table, and a full table evicts from the scope holding the most
 * entries (so many scopes flooding together evict their own, not a quiet scope's). The addresses come from one cursor for all scopes, so an
 * address is never in two entries at once.
 *
 * @module
 */

import { domainToASCII } from "node:url";
import { formatIp, type IpAddress, parseIp } from "../net/address.ts";
import { type Cidr, cidrContains, parseCidr } from "../net/cidr.ts";

/** Default IPv4 fake range. */
export const DEFAULT_FAKE_RANGE_V4 = "198.18.0.0/15";
/** Default IPv6 fake range. */
export const DEFAULT_FAKE_RANGE_V6 = "100::/64";

/** Options of {@linkcode DelegationTable}. */
export interface DelegationTableOptions {
  /**
   * IPv4 fake range.
   * @default {"198.18.0.0/15"}
   */
  readonly ipv4Range?: string;
  /**
   * IPv6 fake range.
   * @default {"100::/64"}
   */
  readonly ipv6Range?: string;
  /**
   * Most entries kept per family (pinned ones included).
   * @default {4096}
   */
  readonly maxEntries?: number;
  /**
   * Most entries kept per scope and family; a scope over it loses its own least recently used
   * unpinned entry.
   * @default {maxEntries}
   */
  readonly maxEntriesPerScope?: number;
  /**
   * An unpinned entry unused this long (milliseconds) expires.
   * @default {600000} (10 minutes)
   */
  readonly idleTtlMs?: number;
  /**
   * Clock, for tests.
   * @default {Date.now}
   */
  readonly now?: () => number;
}

interface Entry {
  readonly name: string;
  readonly scope: string;
  /** `scope`, newline, `name`: the key of `byName`. */
  readonly scoped: string;
  readonly address: IpAddress;
  readonly key: string;
  pins: number;
  lastUsed: number;
}

class Pool {
  readonly range: Cidr;
  readonly family: 4 | 6;
  readonly byName = new Map<string, Entry>();
  /** By address key, in least-recently-used order (oldest first). */
  readonly byAddress = new Map<string, Entry>();
  readonly capacity: number;
  #cursor = 0n;
  readonly #hostBits: number;
  readonly #base: bigint;

  constructor(range: Cidr, maxEntries: number) {
    this.range = range;
    this.family = range.network.family;
    const width = this.family === 4 ? 32 : 128;
    this.#hostBits = width - range.prefixLength;
    this.#base = toBigInt(range.network.bytes);
    // The network address and (IPv4) the top address are never handed out.
    const usable = (1n << BigInt(this.#hostBits)) - (this.family === 4 ? 2n : 1n);
    if (usable < 1n) {
      throw new RangeError(
        `Cannot use fake range ${formatIp(range.network)}/${range.prefixLength}: it is too small`,
      );
    }
    this.capacity = Number(usable < BigInt(maxEntries) ? usable : BigInt(maxEntries));
  }

  /** The next free address after the cursor, skipping x.x.x.0 and x.x.x.255 for IPv4. */
  nextFree(): IpAddress {
    const size = 1n << BigInt(this.#hostBits);
    for (let tries = 0n; tries < size; tries++) {
      this.#cursor = (this.#cursor + 1n) % size;
      if (this.#cursor === 0n) continue;
      const value = this.#base + this.#cursor;
      if (this.family === 4) {
        const low = Number(value & 0xffn);
        if (low === 0 || low === 255) continue;
      }
      const address: IpAddress = { family: this.family, bytes: fromBigInt(value, this.family) };
      if (!this.byAddress.has(keyOf(address))) return address;
    }
    throw new RangeError("Cannot delegate name: the fake range is exhausted");
  }
}

function toBigInt(bytes: Uint8Array): bigint {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value;
}

function fromBigInt(value: bigint, family: 4 | 6): Uint8Array {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return bytes;
}

function keyOf(address: IpAddress): string {
  return `${address.family}:${address.bytes.join(".")}`;
}

/**
 * Normalises a domain name the way the table keys it: IDNA to ASCII (punycode), lower case, no
 * trailing dot.
 *
 * @throws {TypeError} when `name` is not a valid domain name or is an IP literal.
 */
export function normalizeName(name: string): string {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare === "" || parseIp(bare)) {
    throw new TypeError(`Cannot delegate name: "${name}" is not a domain name`);
  }
  const ascii = domainToASCII(bare).toLowerCase();
  if (
    ascii === "" || ascii.length > 253 ||
    ascii.split(".").some((label) => label === "" || label.length > 63)
  ) {
    throw new TypeError(`Cannot delegate name: "${name}" is not a valid domain name`);
  }
  return ascii;
}

/**
 * Name ↔ fake address, one bounded pool per family.
 *
 * @example
 * ```ts
 * import { DelegationTable } from "./delegation_table.ts";
 * import { formatIp } from "../net/address.ts";
 * import assert from "node:assert/strict";
 *
 * const table = new DelegationTable();
 * const fake = table.lookup("V6.Dualgate.Example.", 4);
 * assert.equal(formatIp(fake), "198.18.0.1");
 * assert.equal(table.resolve(fake), "v6.dualgate.example");
 * const release = table.pin(fake); // while a connection uses it
 * release();
 * ```
 */
export class DelegationTable {
  readonly #pools: { 4: Pool; 6: Pool };
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #perScope: number;

  /**
   * Creates a table.
   *
   * @throws {RangeError} when a range does not parse, is of the wrong family, or is too small.
   */
  constructor(options: DelegationTableOptions = {}) {
    const v4 = parseCidr(options.ipv4Range ?? DEFAULT_FAKE_RANGE_V4);
    const v6 = parseCidr(options.ipv6Range ?? DEFAULT_FAKE_RANGE_V6);
    if (v4.network.family !== 4 || v6.network.family !== 6) {
      throw new RangeError(
        "Cannot create delegation table: ipv4Range must be IPv4 and ipv6Range IPv6",
      );
    }
    const max = options.maxEntries ?? 4096;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot create delegation table: maxEntries ${max} must be a positive integer`,
      );
    }
    const perScope = options.maxEntriesPerScope ?? max;
    if (!Number.isInteger(perScope) || perScope < 1) {
      throw new RangeError(
        `Cannot create delegation table: maxEntriesPerScope ${perScope} must be a positive integer`,
      );
    }
    this.#pools = { 4: new Pool(v4, max), 6: new Pool(v6, max) };
    this.#perScope = perScope;
    this.#ttl = options.idleTtlMs ?? 600_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Returns the fake address of `name` in `family`, allocating one if needed (RFC 3089: the fake
   * is of the caller's own family), in `scope` (default: the one shared scope). Marks the entry
   * used.
   *
   * @throws {TypeError} when `name` is not a valid domain name.
   * @throws {RangeError} when every address of the pool (or of the scope) is pinned by live
   *   connections.
   */
  lookup(name: string, family: 4 | 6, scope = ""): IpAddress {
    const key = normalizeName(name);
    const scoped = `${scope}\n${key}`;
    const pool = this.#pools[family];
    this.#expire(pool);
    const existing = pool.byName.get(scoped);
    if (existing) return this.#touch(pool, existing).address;
    if (this.#perScope < pool.capacity) this.#limitScope(pool, scope);
    if (pool.byAddress.size >= pool.capacity) this.#evictOne(pool);
    const address = pool.nextFree();
    const entry: Entry = {
      name: key,
      scope,
      scoped,
      address,
      key: keyOf(address),
      pins: 0,
      lastUsed: this.#now(),
    };
    pool.byName.set(scoped, entry);
    pool.byAddress.set(entry.key, entry);
    return address;
  }

  /**
   * The name behind a fake address in `scope`, or `undefined` when it is not (or no longer) in
   * the table, or belongs to another scope.
   */
  resolve(address: IpAddress, scope = ""): string | undefined {
    const pool = this.#pools[address.family];
    this.#expire(pool);
    const entry = pool.byAddress.get(keyOf(address));
    return entry && entry.scope === scope ? this.#touch(pool, entry).name : undefined;
  }

  /** True when `address` lies in one of the fake ranges (whether or not it is in the table). */
  isFake(address: IpAddress): boolean {
    return cidrContains(this.#pools[address.family].range, address);
  }

  /**
   * Pins the entry of `address` while a connection uses it: it is neither expired nor
   * reassigned until the returned function (idempotent) is called.
   *
   * @throws {RangeError} when `address` is not in the table.
   */
  pin(address: IpAddress): () => void {
    const pool = this.#pools[address.family];
    const entry = pool.byAddress.get(keyOf(address));
    if (!entry) {
      throw new RangeError(`Cannot pin ${formatIp(address)}: it is not in the delegation table`);
    }
    entry.pins++;
    this.#touch(pool, entry);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.pins--;
      if (pool.byAddress.get(entry.key) === entry) this.#touch(pool, entry);
    };
  }

  /** Number of entries of a family. */
  size(family: 4 | 6): number {
    const pool = this.#pools[family];
    this.#expire(pool);
    return pool.byAddress.size;
  }

  #touch(pool: Pool, entry: Entry): Entry {
    entry.lastUsed = this.#now();
    pool.byAddress.delete(entry.key);
    pool.byAddress.set(entry.key, entry);
    return entry;
  }

  #remove(pool: Pool, entry: Entry): void {
    pool.byAddress.delete(entry.key);
    pool.byName.delete(entry.scoped);
  }

  /** Makes room for one more entry of `scope`: drops its least recently used unpinned one. */
  #limitScope(pool: Pool, scope: string): void {
    let count = 0;
    let oldest: Entry | undefined;
    for (const entry of pool.byAddress.values()) {
      if (entry.scope !== scope) continue;
      count++;
      if (oldest === undefined && entry.pins === 0) oldest = entry;
    }
    if (count < this.#perScope) return;
    if (oldest === undefined) {
      throw new RangeError(
        `Cannot delegate name: all ${this.#perScope} IPv${pool.family} fake addresses of the scope are in use by live connections`,
      );
    }
    this.#remove(pool, oldest);
  }

  #expire(pool: Pool): void {
    const deadline = this.#now() - this.#ttl;
    for (const entry of pool.byAddress.values()) {
      if (entry.lastUsed > deadline) break;
      if (entry.pins === 0) this.#remove(pool, entry);
    }
  }

  /**
   * Makes room in a full pool: drops the least recently used unpinned entry of the scope holding
   * the most entries (so a scope, or many, that fill the table evict their own, not a quiet
   * scope's).
   */
  #evictOne(pool: Pool): void {
    const counts = new Map<string, number>();
    const oldest = new Map<string, Entry>();
    for (const entry of pool.byAddress.values()) {
      counts.set(entry.scope, (counts.get(entry.scope) ?? 0) + 1);
      if (entry.pins === 0 && !oldest.has(entry.scope)) oldest.set(entry.scope, entry);
    }
    let victim: Entry | undefined;
    for (const [scope, entry] of oldest) {
      if (victim === undefined || counts.get(scope)! > counts.get(victim.scope)!) victim = entry;
    }
    if (victim) return this.#remove(pool, victim);
    throw new RangeError(
      `Cannot delegate name: all ${pool.capacity} IPv${pool.family} fake addresses are in use by live connections`,
    );
  }
}
