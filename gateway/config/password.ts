/**
 * RFC 1929 password storage and checking: scrypt hashes (`node:crypto`) and constant-time
 * comparison for plain-text and hashed passwords alike.
 *
 * A hash is written `scrypt$N$r$p$SALT_B64$HASH_B64` (standard base64), so a config file can
 * hold one in place of a plain password.
 *
 * @module
 */

import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { UserConfig } from "./types.ts";

/** Options for {@linkcode hashPassword}: the scrypt cost parameters. */
export interface HashPasswordOptions {
  /** CPU/memory cost; a power of two greater than 1. @default 16384 */
  readonly N?: number;
  /** Block size. @default 8 */
  readonly r?: number;
  /** Parallelism. @default 1 */
  readonly p?: number;
}

/** A parsed `scrypt$N$r$p$SALT$HASH` string. */
export interface ScryptHash {
  /** CPU/memory cost (a power of two). */
  readonly N: number;
  /** Block size. */
  readonly r: number;
  /** Parallelism. */
  readonly p: number;
  /** The salt bytes. */
  readonly salt: Uint8Array;
  /** The derived key bytes. */
  readonly hash: Uint8Array;
}

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** scrypt needs 128·N·r bytes; refuse hashes that would need more than this to check. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * Parses a `scrypt$N$r$p$SALT_B64$HASH_B64` string, returning `null` with a reason when it is
 * malformed: used by the config schema so that a bad hash fails the load, not the first login.
 */
export function parsePasswordHash(
  text: string,
): { hash: ScryptHash; error: null } | { hash: null; error: string } {
  const fail = (error: string) => ({ hash: null, error });
  const parts = text.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") {
    return fail("must be scrypt$N$r$p$SALT_B64$HASH_B64");
  }
  const [, nText, rText, pText, saltText, hashText] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const int = (t: string) => (/^[1-9]\d{0,9}$/.test(t) ? Number(t) : NaN);
  const N = int(nText), r = int(rText), p = int(pText);
  if (!(N > 1) || (N & (N - 1)) !== 0) return fail("N must be a power of two greater than 1");
  if (!(r >= 1) || !(p >= 1)) return fail("r and p must be positive integers");
  if (128 * N * r > MAX_SCRYPT_MEMORY) {
    return fail(`N and r need more than ${MAX_SCRYPT_MEMORY >> 20} MiB to check`);
  }
  if (p * r > 1024) return fail("p·r must be at most 1024");
  if (saltText === "" || !BASE64.test(saltText)) return fail("salt must be base64");
  if (!BASE64.test(hashText)) return fail("hash must be base64");
  const salt = Uint8Array.from(atob(saltText), (c) => c.charCodeAt(0));
  const hash = Uint8Array.from(atob(hashText), (c) => c.charCodeAt(0));
  if (hash.length < 16 || hash.length > 64) return fail("hash must be 16..64 bytes");
  return { hash: { N, r, p, salt, hash }, error: null };
}

/**
 * Derives an scrypt key: what {@linkcode verifyPassword} calls for a hashed password (tests
 * replace it to count and hold derivations).
 */
export type DeriveKey = (
  password: string,
  params: Pick<ScryptHash, "N" | "r" | "p" | "salt">,
  length: number,
) => Promise<Uint8Array>;

/** scrypt from `node:crypto`, run off the main thread. */
export const scryptDerive: DeriveKey = (password, { N, r, p, salt }, length) =>
  derive(password, salt, N, r, p, length);

function derive(
  password: string,
  salt: Uint8Array,
  N: number,
  r: number,
  p: number,
  length: number,
) {
  return new Promise<Uint8Array>((resolve, reject) => {
    scrypt(
      password,
      salt,
      length,
      { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(new Uint8Array(key))),
    );
  });
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/**
 * Hashes a password with scrypt (16-byte random salt, 32-byte key) for the config's
 * `password_hash` field.
 *
 * @example
 * ```ts
 * import { hashPassword } from "./password.ts";
 * const hash = await hashPassword("change-me", { N: 1024 });
 * console.log(hash.startsWith("scrypt$1024$8$1$"));
 * ```
 *
 * @param password The password.
 * @param options The scrypt cost parameters.
 * @returns `scrypt$N$r$p$SALT_B64$HASH_B64`.
 * @throws {RangeError} when the parameters are out of range.
 */
export async function hashPassword(
  password: string,
  options: HashPasswordOptions = {},
): Promise<string> {
  const { N = 16384, r = 8, p = 1 } = options;
  const head = `scrypt$${N}$${r}$${p}$`;
  const check = parsePasswordHash(`${head}AAAAAAAAAAAAAAAAAAAAAA==$${"A".repeat(44)}`);
  if (check.error !== null) throw new RangeError(`Cannot hash password: ${check.error}`);
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const key = await derive(password, salt, N, r, p, KEY_BYTES);
  return `${head}${toBase64(salt)}$${toBase64(key)}`;
}

/** Options of {@linkcode verifyPassword}. */
export interface VerifyPasswordOptions {
  /** The scrypt key derivation. @default scryptDerive */
  readonly derive?: DeriveKey;
}

/**
 * Checks a password offered over RFC 1929 against a configured user, in constant time for
 * plain-text and hashed passwords alike (a plain comparison compares SHA-256 digests so that
 * the time does not depend on where or whether the lengths differ).
 *
 * @param password The password the client sent.
 * @param user The configured user.
 * @param options The key derivation.
 * @returns `true` when it matches.
 * @throws {TypeError} when the user's hash is malformed (the config loader rejects those).
 */
export async function verifyPassword(
  password: string,
  user: UserConfig,
  options: VerifyPasswordOptions = {},
): Promise<boolean> {
  if (user.passwordHash !== undefined) {
    const parsed = parsePasswordHash(user.passwordHash);
    if (parsed.hash === null) {
      throw new TypeError(`Cannot verify password: hash of user "${user.name}" ${parsed.error}`);
    }
    const key = await (options.derive ?? scryptDerive)(
      password,
      parsed.hash,
      parsed.hash.hash.length,
    );
    return key.length === parsed.hash.hash.length && timingSafeEqual(key, parsed.hash.hash);
  }
  if (user.password !== undefined) {
    const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
    return timingSafeEqual(digest(password), digest(user.password));
  }
  return false;
}

/**
 * A stand-in for users that do not exist, checked in their place so that a login with an
 * unknown name costs what one with a known name does: of the kind and cost most of `users`
 * have (an scrypt hash with their N, r, p and key length, with a random salt and key that no
 * password derives to; or a random plain-text password). Its name is empty, which RFC 1929
 * cannot carry, so it never matches a login.
 *
 * @example
 * ```ts
 * import { dummyUser, verifyPassword } from "./password.ts";
 * const dummy = dummyUser([{ name: "alice", password: "change-me" }]);
 * console.log(dummy.name === "", await verifyPassword("change-me", dummy)); // true false
 * ```
 *
 * @param users The configured users.
 * @returns The dummy user.
 */
export function dummyUser(users: readonly UserConfig[]): UserConfig {
  const costs = new Map<string, { count: number; hash: ScryptHash }>();
  let plain = 0;
  for (const user of users) {
    const hash = user.passwordHash === undefined ? null : parsePasswordHash(user.passwordHash).hash;
    if (!hash) {
      plain++;
      continue;
    }
    const key = `${hash.N}$${hash.r}$${hash.p}$${hash.hash.length}`;
    const entry = costs.get(key);
    if (entry) entry.count++;
    else costs.set(key, { count: 1, hash });
  }
  let common: { count: number; hash: ScryptHash } | undefined;
  for (const entry of costs.values()) if (!common || entry.count > common.count) common = entry;
  if (!common || plain > common.count) {
    return { name: "", password: toBase64(new Uint8Array(randomBytes(24))) };
  }
  const { N, r, p, hash } = common.hash;
  const salt = new Uint8Array(randomBytes(SALT_BYTES));
  const key = new Uint8Array(randomBytes(hash.length));
  return { name: "", passwordHash: `scrypt$${N}$${r}$${p}$${toBase64(salt)}$${toBase64(key)}` };
}
