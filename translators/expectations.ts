/**
 * The gateway-wide table of expected SOCKS CONNECTs: user-space conntrack expectations.
 *
 * A translator that advertises a data port to a SOCKS client (an FTP 227/229 reply) registers
 * "the next CONNECT from this client to (destination, port) within T means this"; the gateway
 * calls {@linkcode ExpectationRegistry.take} before dialing any CONNECT.
 *
 * @module
 */

import { formatIp } from "../net/address.ts";
import { literalAddress, normalizeName } from "../resolver/name.ts";
import type { SocksTarget } from "../socks5/types.ts";
import type {
  ExpectationPrincipal,
  ExpectationRegistrar,
  ExpectationTable,
  ExpectedConnection,
  ExpectOptions,
} from "./types.ts";

/** Options for {@linkcode ExpectationRegistry}. */
export interface ExpectationRegistryOptions {
  /** Clock in milliseconds, for tests. @default Date.now */
  readonly now?: () => number;
  /** Most live expectations per principal; the oldest is dropped beyond. @default 64 */
  readonly maxPerClient?: number;
}

interface Entry {
  readonly keys: readonly string[];
  readonly expiresAt: number;
  readonly options: ExpectOptions;
  removed: boolean;
  readonly onAbort: () => void;
}

/** The key of a target: an address (a literal name counts as one) or a normalised name. */
function targetKey(target: SocksTarget): string {
  const address = target.address;
  if (address.family !== "name") return `${formatIp(address)}#${target.port}`;
  const literal = literalAddress(address.name);
  if (literal) return `${formatIp(literal)}#${target.port}`;
  return `${normalizeName(address.name) ?? address.name.toLowerCase()}#${target.port}`;
}

/** The key of a principal: the address and the user (JSON, so no user text can forge one). */
function principalKey(principal: ExpectationPrincipal): string {
  return JSON.stringify([formatIp(principal.address), principal.user]);
}

/**
 * Expected CONNECTs, keyed by principal (client address and user) and destination. No timers: entries carry their
 * expiry and are purged whenever the table is touched.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ExpectationRegistry } from "./expectations.ts";
 * import { parseIp } from "../net/address.ts";
 *
 * const table = new ExpectationRegistry();
 * const client = { address: parseIp("192.0.2.1")!, user: "alice" };
 * const target = { address: { family: "name", name: "ftp.example" }, port: 50000 } as const;
 * using _ = table.register(client, {
 *   targets: [target],
 *   ttlMs: 1000,
 *   open: () => Promise.reject(new Error("not in this example")),
 *   signal: new AbortController().signal,
 *   relaySignal: new AbortController().signal,
 * });
 * assert.ok(table.take(client, { ...target, address: { family: "name", name: "FTP.example" } }));
 * assert.equal(table.take(client, target), undefined); // taken once
 * assert.equal(table.take({ ...client, user: "bob" }, target), undefined); // never another user
 * ```
 */
export class ExpectationRegistry implements ExpectationTable, ExpectationRegistrar {
  #byClient = new Map<string, Entry[]>();
  #now: () => number;
  #maxPerClient: number;

  /** Creates an empty table. */
  constructor(options: ExpectationRegistryOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxPerClient = options.maxPerClient ?? 64;
  }

  /** Number of live (unexpired) expectations, for metrics and tests. */
  get size(): number {
    let count = 0;
    const now = this.#now();
    for (const entries of this.#byClient.values()) {
      for (const entry of entries) if (entry.expiresAt > now) count++;
    }
    return count;
  }

  /** Adds an expectation; disposing the result (or aborting `options.signal`) removes it. */
  register(principal: ExpectationPrincipal, options: ExpectOptions): Disposable {
    const clientKey = principalKey(principal);
    const entry: Entry = {
      keys: options.targets.map(targetKey),
      expiresAt: this.#now() + options.ttlMs,
      options,
      removed: false,
      onAbort: () => this.#remove(clientKey, entry),
    };
    if (options.signal.aborted) return { [Symbol.dispose]() {} };
    options.signal.addEventListener("abort", entry.onAbort, { once: true });
    const entries = this.#purge(clientKey);
    entries.push(entry);
    while (entries.length > this.#maxPerClient) this.#remove(clientKey, entries[0]!);
    this.#byClient.set(clientKey, entries);
    return { [Symbol.dispose]: () => this.#remove(clientKey, entry) };
  }

  /**
   * Removes and returns the expectation for a CONNECT by `principal` (same address, same user)
   * to `target`, if any.
   */
  take(principal: ExpectationPrincipal, target: SocksTarget): ExpectedConnection | undefined {
    const clientKey = principalKey(principal);
    if (!this.#byClient.has(clientKey)) return undefined;
    const entries = this.#purge(clientKey);
    const key = targetKey(target);
    const entry = entries.find((candidate) => candidate.keys.includes(key));
    if (!entry) return undefined;
    this.#remove(clientKey, entry);
    let ended = false;
    return {
      open: (signal) => entry.options.open(signal),
      signal: entry.options.relaySignal,
      ended: () => {
        if (ended) return;
        ended = true;
        entry.options.ended?.();
      },
    };
  }

  #purge(clientKey: string): Entry[] {
    const now = this.#now();
    const entries = this.#byClient.get(clientKey) ?? [];
    for (const entry of [...entries]) if (entry.expiresAt <= now) this.#remove(clientKey, entry);
    return this.#byClient.get(clientKey) ?? [];
  }

  #remove(clientKey: string, entry: Entry): void {
    if (entry.removed) return;
    entry.removed = true;
    entry.options.signal.removeEventListener("abort", entry.onAbort);
    const entries = this.#byClient.get(clientKey);
    if (!entries) return;
    const index = entries.indexOf(entry);
    if (index >= 0) entries.splice(index, 1);
    if (entries.length === 0) this.#byClient.delete(clientKey);
  }
}
