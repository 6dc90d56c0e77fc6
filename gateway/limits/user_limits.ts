/**
 * Per-user limits: simultaneous connections, a token bucket each way shared by all the user's
 * relays, and a byte quota per period. Built from each config (a reload builds a new one that
 * keeps the state of the users whose limits are unchanged); anonymous clients (no
 * authentication) and users without limits pass untouched, and their relays run unthrottled.
 *
 * @module
 */

import type { UserConfig, UserLimitsConfig } from "../config/types.ts";
import type { RelayThrottle } from "../relay/relay.ts";
import { ByteQuota } from "./quota.ts";
import { TokenBucket } from "./token_bucket.ts";

/** Why a user's connection was refused. */
export type UserRefusal = "max_connections" | "quota";

/** A connection admitted under its user's limits. */
export interface UserAdmission {
  /** Gives the connection's place back; call once, when the session ends. */
  release(): void;
  /** The user's throttles, for the relay; absent when neither a rate nor a quota applies. */
  readonly throttle?: { readonly up?: RelayThrottle; readonly down?: RelayThrottle };
}

/** Options of {@linkcode UserLimiter}. */
export interface UserLimiterOptions {
  /** Monotonic clock in ms, for the token buckets (tests). @default performance.now */
  now?: () => number;
  /** Wall clock in ms since the epoch, for quota periods (tests). @default Date.now */
  wallClock?: () => number;
  /**
   * The limiter a config reload replaces: a user whose limits are the same keeps its state
   * there (open connections, bucket debts, quota spent), so that a reload forgives nothing and
   * the connections still open under it count; a user whose limits changed starts afresh (its
   * connections still open stay under the old limits and do not count against the new
   * `max_connections`). @default none
   */
  previous?: UserLimiter;
}

class Throttle implements RelayThrottle {
  constructor(readonly bucket: TokenBucket | null, readonly quota: ByteQuota | null) {}

  delay(): number {
    if (this.bucket === null) return 0;
    const tokens = this.bucket.tokens;
    return tokens >= 0 ? 0 : Math.ceil((-tokens * 1000) / this.bucket.rate);
  }

  allowance(max: number): number {
    let allowed = max;
    if (this.bucket !== null && this.bucket.burst < allowed) allowed = this.bucket.burst;
    if (this.quota !== null) allowed = Math.min(allowed, this.quota.remaining);
    if (allowed > 0) this.bucket?.take(allowed);
    return allowed;
  }

  consumed(bytes: number, allowed: number): void {
    this.quota?.consume(bytes);
    if (bytes > allowed) this.bucket?.take(bytes - allowed);
    else if (bytes < allowed) this.bucket?.refund(allowed - bytes);
  }
}

/** One user's live state. */
class UserState {
  active = 0;
  readonly quota: ByteQuota | null;
  readonly throttle: UserAdmission["throttle"];

  constructor(readonly limits: UserLimitsConfig, options: UserLimiterOptions) {
    const bucketOptions = options.now ? { now: options.now } : {};
    this.quota = limits.quota &&
      new ByteQuota(limits.quota, options.wallClock ? { now: options.wallClock } : {});
    const up = limits.up === null ? null : new TokenBucket(limits.up, bucketOptions);
    const down = limits.down === null ? null : new TokenBucket(limits.down, bucketOptions);
    this.throttle = up === null && down === null && this.quota === null ? undefined : {
      up: new Throttle(up, this.quota),
      down: new Throttle(down, this.quota),
    };
  }
}

function sameLimits(a: UserLimitsConfig, b: UserLimitsConfig): boolean {
  return a.maxConnections === b.maxConnections && a.up === b.up && a.down === b.down &&
    a.quota?.bytes === b.quota?.bytes && a.quota?.period === b.quota?.period;
}

const NOTHING: UserAdmission = { release: () => {} };

/** Admits connections under each configured user's limits; see the module doc. */
export class UserLimiter {
  readonly #users = new Map<string, UserState>();

  /** Builds the state of every user with limits (`users[].limits`, else `perUser`). */
  constructor(
    users: readonly UserConfig[],
    perUser: UserLimitsConfig,
    options: UserLimiterOptions = {},
  ) {
    for (const user of users) {
      const limits = user.limits ?? perUser;
      if (
        limits.maxConnections === null && limits.up === null && limits.down === null &&
        limits.quota === null
      ) continue;
      const previous = options.previous;
      const kept = previous === undefined ? undefined : previous.#users.get(user.name);
      this.#users.set(
        user.name,
        kept !== undefined && sameLimits(kept.limits, limits)
          ? kept
          : new UserState(limits, options),
      );
    }
  }

  /**
   * Admits a connection of `user` (`undefined`: anonymous), or says why not: the user has
   * `max_connections` open, or its quota is spent.
   */
  admit(user: string | undefined): UserAdmission | UserRefusal {
    const state = user === undefined ? undefined : this.#users.get(user);
    if (state === undefined) return NOTHING;
    const max = state.limits.maxConnections;
    if (max !== null && state.active >= max) return "max_connections";
    if (state.quota !== null && state.quota.remaining === 0) return "quota";
    state.active++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        state.active--;
      },
      ...(state.throttle && { throttle: state.throttle }),
    };
  }

  /** Connections of `user` open now under its limits (0 for a user without limits). */
  active(user: string): number {
    return this.#users.get(user)?.active ?? 0;
  }
}
