/**
 * A bounded LRU cache of name lookups with positive and negative TTLs.
 *
 * @module
 */

import type { IpAddress } from "../net/address.ts";

/** What the cache remembers about a name. */
export type CachedAnswer =
  | {
    /** The name has addresses. */
    readonly kind: "positive";
    /** IPv4 addresses. */
    readonly v4: readonly IpAddress[];
    /** IPv6 addresses. */
    readonly v6: readonly IpAddress[];
  }
  | {
    /** The name has no addresses. */
    readonly kind: "negative";
    /** Why, for the error message of later hits. */
    readonly reason: string;
  };

/** Options for {@linkcode NameCache}. */
export interface NameCacheOptions {
  /** Most names kept; the least recently used is evicted first. 0 disables caching. */
  readonly maxSize: number;
  /** Upper bound for the TTL of positive answers, in seconds. */
  readonly maxTtlSeconds: number;
  /** TTL of negative answers, in seconds. */
  readonly negativeTtlSeconds: number;
  /** Clock in milliseconds, injectable for tests. @default Date.now */
  readonly now?: () => number;
}

interface Entry {
  readonly answer: CachedAnswer;
  readonly expiresAt: number;
}

/**
 * Bounded LRU cache from normalized name to {@linkcode CachedAnswer}.
 *
 * A positive answer lives for the smaller of its record TTL and `maxTtlSeconds`; a negative
 * one for `negativeTtlSeconds`. Expired entries are dropped when read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NameCache } from "./cache.ts";
 *
 * let now = 0;
 * const cache = new NameCache({
 *   maxSize: 10,
 *   maxTtlSeconds: 300,
 *   negativeTtlSeconds: 30,
 *   now: () => now,
 * });
 * cache.setPositive("example.com", [{ family: 4, bytes: new Uint8Array([192, 0, 2, 1]) }], [], 60);
 * assert.equal(cache.get("example.com")?.kind, "positive");
 * now += 60_000;
 * assert.equal(cache.get("example.com"), undefined);
 * ```
 */
export class NameCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxSize: number;
  readonly #maxTtlMs: number;
  readonly #negativeTtlMs: number;
  readonly #now: () => number;

  /** Creates an empty cache. */
  constructor(options: NameCacheOptions) {
    this.#maxSize = Math.max(0, Math.floor(options.maxSize));
    this.#maxTtlMs = Math.max(0, options.maxTtlSeconds * 1000);
    this.#negativeTtlMs = Math.max(0, options.negativeTtlSeconds * 1000);
    this.#now = options.now ?? Date.now;
  }

  /** Number of entries held, expired ones not yet dropped included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Returns the live answer for `name` and marks it most recently used, or `undefined`. */
  get(name: string): CachedAnswer | undefined {
    const entry = this.#entries.get(name);
    if (!entry) return undefined;
    this.#entries.delete(name);
    if (entry.expiresAt <= this.#now()) return undefined;
    this.#entries.set(name, entry);
    return entry.answer;
  }

  /**
   * Remembers addresses for `name` for `min(ttlSeconds, maxTtlSeconds)`; without a record
   * TTL, for `maxTtlSeconds`. A TTL of 0 stores nothing.
   */
  setPositive(
    name: string,
    v4: readonly IpAddress[],
    v6: readonly IpAddress[],
    ttlSeconds?: number,
  ): void {
    const ttlMs = ttlSeconds === undefined
      ? this.#maxTtlMs
      : Math.min(Math.max(0, ttlSeconds * 1000), this.#maxTtlMs);
    this.#store(name, { kind: "positive", v4: [...v4], v6: [...v6] }, ttlMs);
  }

  /** Remembers for `negativeTtlSeconds` that `name` has no addresses, and why. */
  setNegative(name: string, reason: string): void {
    this.#store(name, { kind: "negative", reason }, this.#negativeTtlMs);
  }

  /** Forgets `name`. */
  delete(name: string): void {
    this.#entries.delete(name);
  }

  /** Forgets everything. */
  clear(): void {
    this.#entries.clear();
  }

  #store(name: string, answer: CachedAnswer, ttlMs: number): void {
    this.#entries.delete(name);
    if (this.#maxSize === 0 || ttlMs <= 0) return;
    this.#entries.set(name, { answer, expiresAt: this.#now() + ttlMs });
    // Map iteration order is insertion order, and reads re-insert: the first key is the LRU.
    while (this.#entries.size > this.#maxSize) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }
}
