/**
 * One shared timer for every relay's idle timeout: relays flip an `active` flag per chunk and
 * the sweeper samples it, so the hot path never touches a timer or a clock.
 *
 * @module
 */

interface Entry {
  readonly activity: { active: boolean };
  readonly idleMs: number;
  readonly onIdle: () => void;
  idleFor: number;
}

/** Sampling period: the idle timeout fires within one tick of its limit. */
const TICK_MS = 250;

/** Samples registered activity flags once a tick and fires `onIdle` past each entry's limit. */
export class IdleSweeper {
  #entries = new Set<Entry>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Registers an activity flag; `onIdle` fires once after `idleMs` without activity. */
  add(activity: { active: boolean }, idleMs: number, onIdle: () => void): Entry {
    const entry: Entry = { activity, idleMs, onIdle, idleFor: 0 };
    this.#entries.add(entry);
    if (this.#timer === undefined) {
      this.#lastTick = performance.now();
      this.#timer = setInterval(() => this.#tick(), TICK_MS);
    }
    return entry;
  }

  /** Unregisters; stops the timer when nothing is left. */
  remove(entry: Entry): void {
    this.#entries.delete(entry);
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #tick(): void {
    const now = performance.now();
    const elapsed = now - (this.#lastTick ?? now);
    this.#lastTick = now;
    for (const entry of this.#entries) {
      if (entry.activity.active) {
        entry.activity.active = false;
        entry.idleFor = 0;
        continue;
      }
      entry.idleFor += elapsed;
      if (entry.idleFor >= entry.idleMs) {
        this.#entries.delete(entry);
        entry.onIdle();
      }
    }
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#lastTick = undefined;
    }
  }

  #lastTick: number | undefined;
}
