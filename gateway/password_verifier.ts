/**
 * RFC 1929 password checks for the gateway: every login costs the same whether the user exists
 * or not (an unknown name is checked against a dummy of the configured users' kind and cost),
 * and scrypt derivations (16 MiB each at the default cost) run a few at a time: past a bounded
 * queue a check is refused at once instead of holding memory, so a flood of logins cannot grow
 * the gateway without bound.
 *
 * @module
 */

import { type DeriveKey, dummyUser, scryptDerive, verifyPassword } from "./config/password.ts";
import type { UserConfig } from "./config/types.ts";

/** The outcome of {@linkcode PasswordVerifier.check}. */
export type PasswordVerdict =
  /** The user exists and the password matches. */
  | "accepted"
  /** Unknown user or wrong password. */
  | "rejected"
  /** Not checked: every scrypt slot and queue place was taken. */
  | "busy";

/** Options of {@linkcode PasswordVerifier}. */
export interface PasswordVerifierOptions {
  /**
   * scrypt derivations run at once.
   * @default the core count (`navigator.hardwareConcurrency`), at most 8
   */
  readonly maxConcurrent?: number;
  /** Derivations waiting for a slot; a check beyond them is `"busy"`. @default 16 per slot */
  readonly maxQueued?: number;
  /** The key derivation (tests count and hold derivations with it). @default scryptDerive */
  readonly derive?: DeriveKey;
}

/** Default number of scrypt slots: one per core, at most 8. */
export function defaultScryptSlots(): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(8, Math.trunc(cores) || 1));
}

/**
 * Checks RFC 1929 credentials against the configured users.
 *
 * @example
 * ```ts
 * import { PasswordVerifier } from "./password_verifier.ts";
 *
 * const verifier = new PasswordVerifier([{ name: "alice", password: "change-me" }]);
 * console.log(await verifier.check("alice", "change-me")); // "accepted"
 * console.log(await verifier.check("mallory", "change-me")); // "rejected"
 * ```
 */
export class PasswordVerifier {
  readonly #users: ReadonlyMap<string, UserConfig>;
  readonly #dummy: UserConfig;
  readonly #slots: number;
  readonly #maxQueued: number;
  readonly #queue: (() => void)[] = [];
  readonly #derive: DeriveKey;
  /** Slots held (a released slot passes straight to the next in the queue). */
  #taken = 0;
  /** Derivations running (at most `#taken`). */
  #running = 0;
  #peak = 0;
  #hashes = 0;

  /** Creates a verifier for `users`. */
  constructor(users: readonly UserConfig[], options: PasswordVerifierOptions = {}) {
    this.#users = new Map(users.map((user) => [user.name, user]));
    this.#dummy = dummyUser(users);
    this.#slots = Math.max(1, Math.trunc(options.maxConcurrent ?? defaultScryptSlots()));
    this.#maxQueued = Math.max(0, Math.trunc(options.maxQueued ?? 16 * this.#slots));
    const derive = options.derive ?? scryptDerive;
    this.#derive = async (password, params, length) => {
      this.#hashes++;
      this.#peak = Math.max(this.#peak, ++this.#running);
      try {
        return await derive(password, params, length);
      } finally {
        this.#running--;
      }
    };
  }

  /** scrypt derivations that may run at once. */
  get slots(): number {
    return this.#slots;
  }

  /** scrypt derivations started so far (unknown users' included). */
  get hashes(): number {
    return this.#hashes;
  }

  /** The most scrypt derivations that ran at once so far. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Checks `password` for `username`; an unknown name is checked against the dummy user, so
   * that it takes as long as a known one.
   */
  async check(username: string, password: string): Promise<PasswordVerdict> {
    const known = this.#users.get(username);
    const user = known ?? this.#dummy;
    if (user.passwordHash === undefined) {
      return (await verifyPassword(password, user)) && known ? "accepted" : "rejected";
    }
    if (!await this.#acquire()) return "busy";
    try {
      const ok = await verifyPassword(password, user, { derive: this.#derive });
      return ok && known ? "accepted" : "rejected";
    } finally {
      this.#release();
    }
  }

  /** Takes a scrypt slot, waiting in the queue; `false` when the queue is full. */
  async #acquire(): Promise<boolean> {
    if (this.#taken < this.#slots) {
      this.#taken++;
      return true;
    }
    if (this.#queue.length >= this.#maxQueued) return false;
    await new Promise<void>((resolve) => this.#queue.push(resolve));
    return true;
  }

  #release(): void {
    const next = this.#queue.shift();
    // The slot passes straight to the next waiter.
    if (next) next();
    else this.#taken--;
  }
}
