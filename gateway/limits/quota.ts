/**
 * Byte quotas per period: bytes both ways counted against an allowance that starts afresh at
 * each UTC period boundary (the hour, midnight, Monday 00:00, the 1st of the month). Kept in
 * memory: a restart starts the period's count afresh.
 *
 * @module
 */

import type { QuotaConfig, QuotaPeriod } from "../config/types.ts";

/** The start (ms since the epoch) of the UTC period holding `now`. */
export function periodStart(period: QuotaPeriod, now: number): number {
  const date = new Date(now);
  const y = date.getUTCFullYear(), m = date.getUTCMonth(), d = date.getUTCDate();
  switch (period) {
    case "hour":
      return Date.UTC(y, m, d, date.getUTCHours());
    case "day":
      return Date.UTC(y, m, d);
    case "week":
      // ISO weeks start on Monday: getUTCDay() is 0 on Sunday.
      return Date.UTC(y, m, d - ((date.getUTCDay() + 6) % 7));
    case "month":
      return Date.UTC(y, m, 1);
  }
}

/** Options of {@linkcode ByteQuota}. */
export interface ByteQuotaOptions {
  /** The wall clock, ms since the epoch (tests). @default Date.now */
  now?: () => number;
}

/** One user's byte quota; see the module doc. */
export class ByteQuota {
  readonly #config: QuotaConfig;
  readonly #now: () => number;
  #start: number;
  #used = 0;

  /** Creates a quota with nothing used in the current period. */
  constructor(config: QuotaConfig, options: ByteQuotaOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#start = periodStart(config.period, this.#now());
  }

  /** Bytes left in the current period (0 when spent). */
  get remaining(): number {
    this.#roll();
    return Math.max(0, this.#config.bytes - this.#used);
  }

  /** Bytes used in the current period. */
  get used(): number {
    this.#roll();
    return this.#used;
  }

  /** Counts `bytes` relayed. */
  consume(bytes: number): void {
    this.#roll();
    this.#used += bytes;
  }

  #roll(): void {
    const start = periodStart(this.#config.period, this.#now());
    if (start !== this.#start) {
      this.#start = start;
      this.#used = 0;
    }
  }
}
