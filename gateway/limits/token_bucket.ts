/**
 * A token bucket for byte rates: bytes are counted after they are relayed, so that the bucket
 * may go into debt by one read; the reader then waits until the debt is paid back before its
 * next read. Shared by every relay direction of one user, so that a user's connections
 * together keep to the user's rate.
 *
 * @module
 */

/** Options of {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /**
   * Bytes the bucket holds when full: what may pass at once after a pause.
   * @default a twentieth of a second at `rate`, at least 4096
   */
  burst?: number;
  /** The clock, in ms (tests). @default performance.now */
  now?: () => number;
}

/** Smallest burst: reads much smaller than this would cost more than they carry. */
const MIN_BURST = 4096;

/** A byte-rate token bucket; see the module doc. */
export class TokenBucket {
  /** Bytes per second. */
  readonly rate: number;
  /** Bytes the bucket holds when full; also the largest read a capped relay makes. */
  readonly burst: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;

  /**
   * Creates a full bucket refilled at `rate` bytes per second.
   *
   * @throws {RangeError} when `rate` is not a positive finite number.
   */
  constructor(rate: number, options: TokenBucketOptions = {}) {
    if (!(rate > 0) || !Number.isFinite(rate)) {
      throw new RangeError(`Cannot create token bucket: rate ${rate} is not a positive number`);
    }
    this.rate = rate;
    this.burst = Math.max(MIN_BURST, Math.floor(options.burst ?? rate / 20));
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.burst;
    this.#last = this.#now();
  }

  /** Tokens (bytes) available now; negative while in debt. */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /**
   * Takes `bytes` that were just relayed and returns how long (ms) the reader must wait before
   * its next read: 0 while the bucket holds tokens, else the time to pay back the debt.
   */
  take(bytes: number): number {
    this.#refill();
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.rate);
  }

  /** Gives back `bytes` taken but not used (a read allowed more than it got), up to the burst. */
  refund(bytes: number): void {
    this.#refill();
    this.#tokens = Math.min(this.burst, this.#tokens + bytes);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#last;
    this.#last = now;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
    }
  }
}
