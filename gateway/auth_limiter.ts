/**
 * Failed RFC 1929 logins per client address over a sliding window: after `maxFailures` within
 * the window the address is blocked until its oldest counted failure leaves the window.
 *
 * Memory is bounded: each address keeps at most `maxFailures` timestamps, addresses whose
 * failures all left the window are dropped, and past `maxEntries` addresses the least recently
 * failing one is evicted.
 *
 * @module
 */

/** Options of {@linkcode AuthFailureLimiter}. */
export interface AuthFailureLimiterOptions {
  /** Length of the sliding window in ms. @default 60000 */
  windowMs?: number;
  /** Most addresses tracked at once. @default 10000 */
  maxEntries?: number;
  /** The clock, in ms. @default performance.now */
  now?: () => number;
}

/**
 * Counts failed logins per client key and says which keys are blocked.
 *
 * @example
 * ```ts
 * import { AuthFailureLimiter } from "./auth_limiter.ts";
 *
 * let now = 0;
 * const limiter = new AuthFailureLimiter(2, { now: () => now });
 * limiter.recordFailure("192.0.2.1");
 * limiter.recordFailure("192.0.2.1");
 * if (!limiter.isBlocked("192.0.2.1")) throw new Error("expected blocked");
 * now = 60_001;
 * if (limiter.isBlocked("192.0.2.1")) throw new Error("expected free again");
 * ```
 */
export class AuthFailureLimiter {
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Failure times per key, oldest first; Map order is least recently failing first. */
  readonly #failures = new Map<string, number[]>();

  /**
   * Creates a limiter allowing `maxFailures` failures per key within the window.
   *
   * @throws {RangeError} when `maxFailures` is not a positive integer.
   */
  constructor(maxFailures: number, options: AuthFailureLimiterOptions = {}) {
    if (!Number.isInteger(maxFailures) || maxFailures < 1) {
      throw new RangeError(
        `Cannot create auth failure limiter: ${maxFailures} is not a positive integer`,
      );
    }
    this.#maxFailures = maxFailures;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Number of keys tracked (for tests and metrics). */
  get size(): number {
    return this.#failures.size;
  }

  /** Counts one failed login of `key`. */
  recordFailure(key: string): void {
    const now = this.#now();
    const times = this.#live(key, now) ?? [];
    times.push(now);
    if (times.length > this.#maxFailures) times.shift();
    // Re-insert so that Map order stays least recently failing first.
    this.#failures.delete(key);
    this.#failures.set(key, times);
    if (this.#failures.size > this.#maxEntries) this.#evict(now);
  }

  /** True while `key` has `maxFailures` failures within the window. */
  isBlocked(key: string): boolean {
    const times = this.#live(key, this.#now());
    return times !== undefined && times.length >= this.#maxFailures;
  }

  /** The failures of `key` still in the window (expired ones dropped), or `undefined`. */
  #live(key: string, now: number): number[] | undefined {
    const times = this.#failures.get(key);
    if (!times) return undefined;
    const cutoff = now - this.#windowMs;
    let expired = 0;
    while (expired < times.length && times[expired]! <= cutoff) expired++;
    if (expired === times.length) {
      this.#failures.delete(key);
      return undefined;
    }
    if (expired > 0) times.splice(0, expired);
    return times;
  }

  #evict(now: number): void {
    // Map order is by last failure, so expired keys are at the front: O(evicted), not O(size).
    const cutoff = now - this.#windowMs;
    for (const [key, times] of this.#failures) {
      if (this.#failures.size <= this.#maxEntries && times[times.length - 1]! > cutoff) break;
      this.#failures.delete(key);
    }
  }
}
