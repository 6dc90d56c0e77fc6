/**
 * RFC 1929 password checks for the gateway: every login costs the same whether the user exists
 * or not (an unknown name is checked against a dummy of the configured users' kind and cost),
 * and scrypt derivations (16 MiB each at the default cost) run a few at a time: past a bounded
 * queue a check is refused at once instead of holding memory, so a flood of logins cannot grow
 * the gateway without bound.
 *
 * The slots and the queue are shared fairly between clients (the key a check names, see
 * `client_key.ts`): one key holds at most one running derivation and two waiting, beyond which
 * ITS checks are `"busy"` while other keys still get slots and queue places; a waiting check
 * whose key has fewer waiting displaces a waiter of the key with the most, and freed slots go
 * round-robin over the keys. So a flood from one client (or from a few) cannot keep another
 * client's login out of scrypt.
 *
 * Two things skip the queue, both alike for known and unknown user names (no name is served
 * sooner than another, which would tell which names exist):
 * - a check with the same user name and password as one already queued or running waits for
 *   that one's verdict (a client opening many connections at once runs one derivation);
 * - a recent successful login (user name and an HMAC of the password under a per-process
 *   random key, for a few minutes, a bounded number of them) is accepted again without scrypt.
 *   Only the exact right password hits, so a wrong guess costs what it always did.
 *
 * @module
 */

import { createHmac, randomBytes } from "node:crypto";
import { type DeriveKey, dummyUser, scryptDerive, verifyPassword } from "./config/password.ts";
import type { UserConfig } from "./config/types.ts";

/** The outcome of {@linkcode PasswordVerifier.check}. */
export type PasswordVerdict =
  /** The user exists and the password matches. */
  | "accepted"
  /** Unknown user or wrong password. */
  | "rejected"
  /** Not checked: the key's share, or every scrypt slot and queue place, was taken. */
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
  /** Derivations one key may run at once. @default 1 */
  readonly perKeyRunning?: number;
  /** Derivations one key may have waiting. @default 2 */
  readonly perKeyQueued?: number;
  /** How long a successful login is remembered, in ms (0: never). @default 300000 */
  readonly recentTtlMs?: number;
  /** Most successful logins remembered. @default 1024 */
  readonly recentMax?: number;
  /** The clock, in ms. @default performance.now */
  readonly now?: () => number;
  /** The key derivation (tests count and hold derivations with it). @default scryptDerive */
  readonly derive?: DeriveKey;
}

/** Per-key share of the slots and the queue. */
interface KeyState {
  running: number;
  readonly waiting: ((granted: boolean) => void)[];
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
  readonly #perKeyRunning: number;
  readonly #perKeyQueued: number;
  readonly #derive: DeriveKey;
  /** Keys with a derivation running or waiting; Map order is the round-robin order. */
  readonly #keys = new Map<string, KeyState>();
  /** Checks in flight by credentials digest: a same-credentials check shares the verdict. */
  readonly #inFlight = new Map<string, Promise<PasswordVerdict>>();
  /** Recent successful logins: credentials digest to expiry; Map order is least recent first. */
  readonly #recent = new Map<string, number>();
  readonly #recentTtlMs: number;
  readonly #recentMax: number;
  readonly #now: () => number;
  readonly #hmacKey = randomBytes(32);
  /** Slots held. */
  #taken = 0;
  /** Checks waiting for a slot. */
  #queued = 0;
  /** Derivations running (at most `#taken`). */
  #running = 0;
  #peak = 0;
  #hashes = 0;
  #recentHits = 0;

  /** Creates a verifier for `users`. */
  constructor(users: readonly UserConfig[], options: PasswordVerifierOptions = {}) {
    this.#users = new Map(users.map((user) => [user.name, user]));
    this.#dummy = dummyUser(users);
    this.#slots = Math.max(1, Math.trunc(options.maxConcurrent ?? defaultScryptSlots()));
    this.#maxQueued = Math.max(0, Math.trunc(options.maxQueued ?? 16 * this.#slots));
    this.#perKeyRunning = Math.max(1, Math.trunc(options.perKeyRunning ?? 1));
    this.#perKeyQueued = Math.max(0, Math.trunc(options.perKeyQueued ?? 2));
    this.#recentTtlMs = Math.max(0, options.recentTtlMs ?? 300_000);
    this.#recentMax = Math.max(0, Math.trunc(options.recentMax ?? 1024));
    this.#now = options.now ?? (() => performance.now());
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

  /** Logins accepted from the recent-logins memory, without scrypt. */
  get recentHits(): number {
    return this.#recentHits;
  }

  /**
   * Checks `password` for `username` on behalf of the client `key`; an unknown name is checked
   * against the dummy user, so that it takes as long as a known one.
   */
  check(username: string, password: string, key = ""): Promise<PasswordVerdict> {
    const known = this.#users.get(username);
    const user = known ?? this.#dummy;
    if (user.passwordHash === undefined) {
      return verifyPassword(password, user).then((ok) => ok && known ? "accepted" : "rejected");
    }
    const digest = this.#digest(username, password);
    if (this.#recentlyAccepted(digest)) {
      this.#recentHits++;
      return Promise.resolve("accepted");
    }
    const shared = this.#inFlight.get(digest);
    if (shared) return shared;
    const place = this.#admit(key);
    if (place === null) return Promise.resolve("busy");
    const verdict = (async (): Promise<PasswordVerdict> => {
      if (!await place) return "busy";
      try {
        const ok = await verifyPassword(password, user, { derive: this.#derive });
        if (ok && known) this.#remember(digest);
        return ok && known ? "accepted" : "rejected";
      } finally {
        this.#release(key);
      }
    })();
    this.#inFlight.set(digest, verdict);
    const forget = () => {
      if (this.#inFlight.get(digest) === verdict) this.#inFlight.delete(digest);
    };
    verdict.then(forget, forget);
    return verdict;
  }

  /** HMAC of the credentials under the per-process key (the password is never kept). */
  #digest(username: string, password: string): string {
    // JSON keeps the pair unambiguous (no "a\0" + "b" = "a" + "\0b").
    return createHmac("sha256", this.#hmacKey).update(JSON.stringify([username, password]))
      .digest("base64");
  }

  #recentlyAccepted(digest: string): boolean {
    const expiry = this.#recent.get(digest);
    if (expiry === undefined) return false;
    this.#recent.delete(digest);
    if (expiry <= this.#now()) return false;
    this.#recent.set(digest, expiry); // most recent last
    return true;
  }

  #remember(digest: string): void {
    if (this.#recentTtlMs === 0 || this.#recentMax === 0) return;
    this.#recent.delete(digest);
    this.#recent.set(digest, this.#now() + this.#recentTtlMs);
    for (const oldest of this.#recent.keys()) {
      if (this.#recent.size <= this.#recentMax) break;
      this.#recent.delete(oldest);
    }
  }

  /**
   * Gives `key` a slot (resolves `true`) or a queue place (resolves `true` once a slot is
   * handed over, `false` when displaced), or returns `null` when its share or the queue is full.
   */
  #admit(key: string): Promise<boolean> | null {
    let state = this.#keys.get(key);
    const running = state?.running ?? 0;
    const waiting = state?.waiting.length ?? 0;
    if (running + waiting >= this.#perKeyRunning + this.#perKeyQueued) return null;
    if (waiting === 0 && running < this.#perKeyRunning && this.#taken < this.#slots) {
      if (!state) this.#keys.set(key, state = { running: 0, waiting: [] });
      state.running++;
      this.#taken++;
      return Promise.resolve(true);
    }
    if (waiting >= this.#perKeyQueued) return null;
    if (this.#queued >= this.#maxQueued && !this.#displaceFor(waiting)) return null;
    if (!state) this.#keys.set(key, state = { running: 0, waiting: [] });
    const { promise, resolve } = Promise.withResolvers<boolean>();
    state.waiting.push(resolve);
    this.#queued++;
    return promise;
  }

  /**
   * Frees a queue place for a key with `waiting` checks waiting: the newest waiter of the key
   * with the most waiting is refused, if that key has at least two more than `waiting`.
   */
  #displaceFor(waiting: number): boolean {
    let most: [string, KeyState] | undefined;
    for (const entry of this.#keys) {
      if (entry[1].waiting.length > (most?.[1].waiting.length ?? 0)) most = entry;
    }
    if (!most || most[1].waiting.length < waiting + 2) return false;
    const [key, state] = most;
    state.waiting.pop()!(false);
    this.#queued--;
    if (state.running === 0 && state.waiting.length === 0) this.#keys.delete(key);
    return true;
  }

  #release(key: string): void {
    const state = this.#keys.get(key)!;
    state.running--;
    this.#taken--;
    // To the back of the round-robin order (or out of it when it has nothing left).
    this.#keys.delete(key);
    if (state.running > 0 || state.waiting.length > 0) this.#keys.set(key, state);
    this.#dispatch();
  }

  /** Hands free slots to waiters, round-robin over the keys below their running share. */
  #dispatch(): void {
    while (this.#taken < this.#slots && this.#queued > 0) {
      let next: [string, KeyState] | undefined;
      for (const entry of this.#keys) {
        if (entry[1].waiting.length > 0 && entry[1].running < this.#perKeyRunning) {
          next = entry;
          break;
        }
      }
      if (!next) return;
      const [key, state] = next;
      // To the back of the round-robin order.
      this.#keys.delete(key);
      this.#keys.set(key, state);
      state.running++;
      this.#taken++;
      this.#queued--;
      state.waiting.shift()!(true);
    }
  }
}
