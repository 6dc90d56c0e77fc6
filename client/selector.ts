/**
 * Picks among alternatives (a gateway hop's, or the Socks Lib's gateway list) and remembers which
 * ones failed.
 *
 * An alternative that fails `maxFails` times in a row is marked down for `failTimeoutMs` and
 * skipped while healthy ones remain; a success clears its count. When every alternative is
 * marked down, they are still tried (soonest to recover first), so one blip does not refuse a
 * whole route for the fail timeout.
 *
 * @module
 */

/**
 * Every way a connection can pick among alternatives: the one list that the config schema
 * (`strategy:` of a hop) and `main.ts socksify --strategy` both accept.
 */
export const HOP_STRATEGIES = ["failover", "round-robin", "random"] as const;

/** How a connection picks among alternatives. */
export type HopStrategy = typeof HOP_STRATEGIES[number];

/**
 * Narrows a string to a {@linkcode HopStrategy}.
 *
 * @example
 * ```ts
 * import { isHopStrategy } from "./selector.ts";
 * console.log(isHopStrategy("round-robin"), isHopStrategy("fastest")); // true false
 * ```
 */
export function isHopStrategy(text: string): text is HopStrategy {
  return (HOP_STRATEGIES as readonly string[]).includes(text);
}

/** Options of {@linkcode HopSelector}. */
export interface HopSelectorOptions {
  /** Selection among healthy alternatives. @default "failover" */
  strategy?: HopStrategy;
  /** Failures in a row that mark an alternative down. @default 1 */
  maxFails?: number;
  /** How long a marked alternative is skipped, in milliseconds. @default 30000 */
  failTimeoutMs?: number;
  /** The clock, in milliseconds (tests pass a fake one). @default performance.now */
  now?: () => number;
  /** Uniform random numbers in [0, 1) for `random`. @default Math.random */
  random?: () => number;
}

/** One alternative of one connection attempt, as {@linkcode HopSelector.attempts} hands it out. */
export interface SelectorAttempt {
  /** The alternative's index. */
  readonly index: number;
  /** Records a transport or authentication failure (see {@linkcode HopSelector.fail}). */
  failed(): void;
  /** Records that the alternative answered (see {@linkcode HopSelector.succeed}). */
  succeeded(): void;
}

/** One alternative's state (see {@linkcode HopSelector.state}). */
export interface SelectorState {
  /** True while marked down. */
  readonly down: boolean;
  /** Milliseconds in this state, or `null` for an alternative up and never marked. */
  readonly forMs: number | null;
}

/** Failure-aware selection among `count` alternatives (indices `0..count-1`). */
export class HopSelector {
  readonly #count: number;
  readonly #strategy: HopStrategy;
  readonly #maxFails: number;
  readonly #failTimeoutMs: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #fails: number[];
  readonly #downUntil: number[];
  /** When each alternative was last marked down, or cleared by a success (null: never). */
  readonly #changedAt: (number | null)[];
  #next = 0;

  /** Creates a selector over `count` alternatives. */
  constructor(count: number, options: HopSelectorOptions = {}) {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot select: a hop needs at least one alternative, got ${count}`);
    }
    this.#count = count;
    this.#strategy = options.strategy ?? "failover";
    this.#maxFails = Math.max(1, options.maxFails ?? 1);
    this.#failTimeoutMs = options.failTimeoutMs ?? 30_000;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#fails = new Array<number>(count).fill(0);
    this.#downUntil = new Array<number>(count).fill(-Infinity);
    this.#changedAt = new Array<number | null>(count).fill(null);
  }

  /** Number of alternatives. */
  get count(): number {
    return this.#count;
  }

  /**
   * Alternative `index` as a status page shows it: marked down or up, and for how long, in
   * milliseconds of this selector's clock (`null`: up and never marked).
   */
  state(index: number): SelectorState {
    const now = this.#now();
    const until = this.#downUntil[index]!;
    const changed = this.#changedAt[index]!;
    if (until > now) return { down: true, forMs: now - (changed ?? now) };
    // Up again: since the mark ran out or a success cleared it, whichever came later.
    if (until === -Infinity) return { down: false, forMs: changed === null ? null : now - changed };
    return { down: false, forMs: now - Math.max(until, changed ?? until) };
  }

  /**
   * The order in which one connection attempt tries the alternatives: the healthy ones by the
   * strategy, then the marked ones, soonest to recover first. Round-robin advances once per call.
   */
  order(): number[] {
    const now = this.#now();
    const healthy: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < this.#count; i++) {
      (this.#downUntil[i]! <= now ? healthy : down).push(i);
    }
    if (this.#strategy === "round-robin" && healthy.length > 1) {
      // Rotate over the healthy ones, so that a marked alternative does not skew the spread.
      const start = this.#next++ % healthy.length;
      healthy.push(...healthy.splice(0, start));
    } else if (this.#strategy === "random") {
      for (let i = healthy.length - 1; i > 0; i--) {
        const j = Math.floor(this.#random() * (i + 1));
        [healthy[i], healthy[j]] = [healthy[j]!, healthy[i]!];
      }
    }
    down.sort((a, b) => this.#downUntil[a]! - this.#downUntil[b]!);
    return [...healthy, ...down];
  }

  /** {@linkcode order}, as attempts that report their outcome back to this selector. */
  attempts(): SelectorAttempt[] {
    return this.order().map((index) => ({
      index,
      failed: () => this.fail(index),
      succeeded: () => this.succeed(index),
    }));
  }

  /** True while alternative `index` is marked down. */
  isDown(index: number): boolean {
    return this.#downUntil[index]! > this.#now();
  }

  /** Records a transport or authentication failure of alternative `index`. */
  fail(index: number): void {
    const fails = this.#fails[index]! + 1;
    if (fails >= this.#maxFails) {
      this.#fails[index] = 0;
      const now = this.#now();
      this.#downUntil[index] = now + this.#failTimeoutMs;
      this.#changedAt[index] = now;
    } else {
      this.#fails[index] = fails;
    }
  }

  /** Records a success of alternative `index`: its failure count and mark are cleared. */
  succeed(index: number): void {
    this.#fails[index] = 0;
    // A success after a mark (ran out or not) is when the alternative came back.
    if (this.#downUntil[index]! !== -Infinity) {
      const now = this.#now();
      this.#changedAt[index] = Math.min(now, this.#downUntil[index]!);
    }
    this.#downUntil[index] = -Infinity;
  }
}
