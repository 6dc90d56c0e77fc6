/**
 * RFC 1929 password checks for the gateway: every login costs the same whether the user exists
 * or not (an unknown name is checked against a dummy of the configured users' kind and cost),
 * and scrypt derivations (16 MiB each at the default cost) run a few at a time: past a bounded
 * queue a check is refused at once instead of holding memory, so a flood of logins cannot grow
 * the gateway without bound.
 *
 * The slots and the queue are shared fairly between clients (the key a check names, see
 * `client_key.ts`): one key holds at most one running derivation and two waiting, beyond which
 * ITS checks are `"busy"` while other keys still get slots and queue places, and freed slots go
 * round-robin over the keys. When the queue is full, a newcomer displaces the newest waiter of
 * the group holding the most waiting (IPv6 keys group by their /48, so many /64s of one
 * allocation count as one; any other key is its own group) if that group holds at least two
 * more than the newcomer's, else of the key holding the most if it holds at least two more than
 * the newcomer's key; and a newcomer whose group holds none, facing only groups of one waiter
 * each, displaces one of them at random (a tie: neither side can keep the other out for good).
 * A check refused or displaced while its key's own share was full is `"busy"` (the caller counts
 * it as a failed login); otherwise it is `"crowded"` (other keys filled the queue: not the
 * client's fault, never counted). So a flood from one client, or from many /64s of one /48,
 * cannot keep another client's login out of scrypt nor get that client blocked.
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
import { type DeriveKey, dummyUser, scryptDerive, verifyPassword } from "../config/password.ts";
import type { UserConfig } from "../config/types.ts";
import { clientKey } from "./client_key.ts";
import { parseIp } from "../../net/address.ts";

/** The outcome of {@linkcode PasswordVerifier.check}. */
export type PasswordVerdict =
  /** The user exists and the password matches. */
  | "accepted"
  /** Unknown user or wrong password. */
  | "rejected"
  /** Not checked: the key's own share of slots and queue places was taken. */
  | "busy"
  /** Not checked: every slot and queue place was taken by other keys' checks. */
  | "crowded";

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
  readonly waiting: ((granted: PasswordVerdict | null) => void)[];
  /** The queue-share group: the /48 of an IPv6 key, else the key. */
  readonly group: string;
}

/** The queue-share group of `key`: the /48 of an IPv6 prefix key (`2001:db8:1::/64`), else the key. */
function groupOf(key: string): string {
  const slash = key.indexOf("/");
  if (slash < 0 || !key.includes(":")) return key;
  const ip = parseIp(key.slice(0, slash));
  if (ip?.family !== 6 || Number(key.slice(slash + 1)) < 48) return key;
  return clientKey(ip, 48);
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
    if (typeof place === "string") return Promise.resolve(place);
    const verdict = (async (): Promise<PasswordVerdict> => {
      const refused = await place;
      if (refused !== null) return refused;
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
   * Gives `key` a slot (resolves `null`) or a queue place (resolves `null` once a slot is
   * handed over, the refusal when displaced), or returns the refusal at once: `"busy"` when its
   * own share is full, `"crowded"` when the queue is full and nobody can be displaced.
   */
  #admit(key: string): Promise<PasswordVerdict | null> | PasswordVerdict {
    let state = this.#keys.get(key);
    const running = state?.running ?? 0;
    const waiting = state?.waiting.length ?? 0;
    if (running + waiting >= this.#perKeyRunning + this.#perKeyQueued) return "busy";
    if (waiting === 0 && running < this.#perKeyRunning && this.#taken < this.#slots) {
      if (!state) this.#keys.set(key, state = { running: 0, waiting: [], group: groupOf(key) });
      state.running++;
      this.#taken++;
      return Promise.resolve(null);
    }
    if (waiting >= this.#perKeyQueued) return "busy";
    const group = state?.group ?? groupOf(key);
    if (this.#queued >= this.#maxQueued && !this.#displaceFor(group, waiting)) return "crowded";
    if (!state) this.#keys.set(key, state = { running: 0, waiting: [], group });
    const { promise, resolve } = Promise.withResolvers<PasswordVerdict | null>();
    state.waiting.push(resolve);
    this.#queued++;
    return promise;
  }

  /**
   * Frees a queue place for a key of `group` with `waiting` checks waiting (see the module doc):
   * by group (two more), else by key (two more), else at random over single-waiter groups when
   * `group` holds none. False when no waiter may be displaced.
   */
  #displaceFor(group: string, waiting: number): boolean {
    const groups = new Map<string, number>();
    let mostKey: [string, KeyState] | undefined;
    for (const entry of this.#keys) {
      const held = entry[1].waiting.length;
      if (held > 0) groups.set(entry[1].group, (groups.get(entry[1].group) ?? 0) + held);
      if (held > (mostKey?.[1].waiting.length ?? 0)) mostKey = entry;
    }
    const own = groups.get(group) ?? 0;
    let mostGroup: string | undefined;
    for (const [name, held] of groups) if (held > (groups.get(mostGroup!) ?? 0)) mostGroup = name;
    const mostHeld = groups.get(mostGroup!) ?? 0;
    if (mostHeld >= own + 2) return this.#displaceIn(mostGroup!);
    if (mostKey && mostKey[1].waiting.length >= waiting + 2) return this.#displace(...mostKey);
    if (own === 0 && mostHeld === 1) {
      const tied = [...groups.keys()];
      return this.#displaceIn(tied[Math.floor(Math.random() * tied.length)]!);
    }
    return false;
  }

  /** Displaces the newest waiter of the key of `group` holding the most waiting (the newest such key). */
  #displaceIn(group: string): boolean {
    let most: [string, KeyState] | undefined;
    for (const entry of this.#keys) {
      if (entry[1].group !== group || entry[1].waiting.length === 0) continue;
      if (entry[1].waiting.length >= (most?.[1].waiting.length ?? 0)) most = entry;
    }
    return most !== undefined && this.#displace(...most);
  }

  /**
   * Refuses the newest waiter of `key`: `"busy"` if the key's own share was full, else
   * `"crowded"`.
   */
  #displace(key: string, state: KeyState): boolean {
    const full = state.running + state.waiting.length >= this.#perKeyRunning + this.#perKeyQueued;
    state.waiting.pop()!(full ? "busy" : "crowded");
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
      state.waiting.shift()!(null);
    }
  }
}
