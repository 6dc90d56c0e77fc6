/**
 * Failed RFC 1929 logins per client address over a sliding window: after `maxFailures` within
 * the window the address is blocked until its oldest counted failure leaves the window.
 *
 * Attempts are counted while in flight too ({@linkcode AuthFailureLimiter.acquire}): a password
 * is checked only while failures so far plus checks in flight stay below `maxFailures`, so a
 * client that opens hundreds of connections first and then sends hundreds of passwords at once
 * gets no more guesses checked than one that sends them one after another.
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

/** A login attempt counted in flight by {@linkcode AuthFailureLimiter.acquire}. */
export interface AuthAttempt {
  /**
   * Ends the attempt: it leaves the in-flight count and, when `failed`, counts as a failure.
   * Only the first call counts.
   */
  finish(failed: boolean): void;
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
  /** Attempts in flight per key (bounded by the connections; dropped at 0). */
  readonly #inFlight = new Map<string, number>();
  /** Attempts waiting for one in flight of the same key to finish. */
  readonly #waiters = new Map<string, (() => void)[]>();

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

  /** Attempts of `key` in flight. */
  inFlight(key: string): number {
    return this.#inFlight.get(key) ?? 0;
  }

  /**
   * Starts a login attempt of `key`, to be ended with {@linkcode AuthAttempt.finish}, or
   * resolves `null` when `key` is blocked: then the password must not be checked at all.
   *
   * While failures within the window plus attempts in flight reach `maxFailures` but failures
   * alone do not, the attempt waits for one in flight to finish (a legitimate client logging in
   * on many connections at once), then decides again. Resolves `null` too when `signal` aborts.
   */
  async acquire(key: string, signal?: AbortSignal): Promise<AuthAttempt | null> {
    while (!signal?.aborted) {
      const failures = this.#live(key, this.#now())?.length ?? 0;
      if (failures >= this.#maxFailures) return null;
      const inFlight = this.inFlight(key);
      if (failures + inFlight < this.#maxFailures) {
        this.#inFlight.set(key, inFlight + 1);
        return this.#attempt(key);
      }
      await this.#wait(key, signal);
    }
    return null;
  }

  #attempt(key: string): AuthAttempt {
    let done = false;
    return {
      finish: (failed) => {
        if (done) return;
        done = true;
        const left = this.inFlight(key) - 1;
        if (left > 0) this.#inFlight.set(key, left);
        else this.#inFlight.delete(key);
        if (failed) this.recordFailure(key);
        const waiters = this.#waiters.get(key);
        this.#waiters.delete(key);
        for (const wake of waiters ?? []) wake();
      },
    };
  }

  #wait(key: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener("abort", wake);
        resolve();
      };
      signal?.addEventListener("abort", wake, { once: true });
      const list = this.#waiters.get(key);
      if (list) list.push(wake);
      else this.#waiters.set(key, [wake]);
    });
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
