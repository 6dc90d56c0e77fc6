/**
 * Authentication of the admin listener (`admin.auth`): a bearer token, and/or the RFC 1929
 * users' credentials over HTTP Basic.
 *
 * - `Authorization: Bearer <token>`: the token's SHA-256 is compared with the configured digest
 *   in constant time (the digest hides the token's length as well).
 * - `Authorization: Basic base64(token:<token>)`: the same token, for a browser (which cannot
 *   send a bearer header on navigation).
 * - `Authorization: Basic base64(<user>:<password>)` when `users` is on: checked like a SOCKS
 *   login (scrypt, the same fair queue and per-client bounds).
 *
 * Anything else (no header, two schemes, a malformed one, control characters) is refused.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { IpEndpoint } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import type { AdminAuthConfig } from "../config/types.ts";

/** What the admin listener accepts. */
export interface AdminAuth {
  /** SHA-256 of the bearer token, when one is configured. */
  readonly tokenSha256?: Uint8Array;
  /**
   * Checks RFC 1929 credentials of `client` (`accepted` or not), when the users may log in:
   * through the gateway's failed-login limiter, so that guessing over HTTP is bounded as over
   * SOCKS.
   */
  readonly checkUser?: (
    username: string,
    password: string,
    client: IpEndpoint,
    signal: AbortSignal,
  ) => Promise<string>;
}

/** The `WWW-Authenticate` challenge sent with a 401. */
export const ADMIN_CHALLENGE = 'Basic realm="dualgate admin", charset="UTF-8"';

/** SHA-256 of a token, as {@linkcode AdminAuth.tokenSha256} holds it. */
export function tokenDigest(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token, "utf8").digest());
}

function tokenMatches(token: string, expected: Uint8Array | undefined): boolean {
  if (!expected || expected.length !== 32) return false;
  return timingSafeEqual(tokenDigest(token), expected);
}

// Printable ASCII without spaces: what a token68 or base64 credential can hold.
const CREDENTIAL = /^[\x21-\x7e]+$/;

function decodeBasic(encoded: string): { user: string; password: string } | null {
  let text: string;
  try {
    const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  // No control characters in either part: they have no place in a name or password here.
  if (colon < 0 || [...text].some((c) => c < " " || c === "\x7f")) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Who asks, for {@linkcode isAuthorized}. */
export interface AdminClient {
  /** The peer, for the failed-login limiter and the password checks' fair queue. */
  readonly endpoint: IpEndpoint;
  /** The request's signal. */
  readonly signal: AbortSignal;
}

/**
 * True when `authorization` (the request's header, `null` when absent) carries credentials
 * `auth` accepts.
 */
export async function isAuthorized(
  authorization: string | null,
  auth: AdminAuth,
  client: AdminClient,
): Promise<boolean> {
  if (authorization === null) return false;
  // Exactly one scheme and one credential: a repeated header arrives joined by ", ".
  const match = /^(Bearer|Basic) ([^ ]+)$/i.exec(authorization);
  if (!match || !CREDENTIAL.test(match[2]!)) return false;
  const scheme = match[1]!.toLowerCase();
  const credential = match[2]!;
  if (scheme === "bearer") return tokenMatches(credential, auth.tokenSha256);
  const basic = decodeBasic(credential);
  if (!basic) return false;
  if (basic.user === "token" && auth.tokenSha256) {
    return tokenMatches(basic.password, auth.tokenSha256);
  }
  if (!auth.checkUser) return false;
  return await auth.checkUser(basic.user, basic.password, client.endpoint, client.signal) ===
    "accepted";
}

/**
 * The {@linkcode AdminAuth} of `admin.auth`: reads `token_file` (one trailing newline dropped)
 * and takes `checkUser` for `users: true`.
 *
 * @throws {Error} naming `admin.auth.token_file` when the file cannot be read or is empty.
 */
export function loadAdminAuth(
  config: AdminAuthConfig,
  checkUser: NonNullable<AdminAuth["checkUser"]>,
): AdminAuth {
  let tokenSha256: Uint8Array | undefined;
  if (config.tokenFile !== undefined) {
    let token: string;
    try {
      token = Deno.readTextFileSync(config.tokenFile).replace(/\r?\n$/, "");
    } catch (error) {
      throw new Error(
        `admin.auth.token_file: cannot read ${config.tokenFile}: ${errorText(error)}`,
      );
    }
    if (token.length === 0 || !CREDENTIAL.test(token)) {
      throw new Error(
        `admin.auth.token_file: ${config.tokenFile} must hold one token of printable ` +
          "characters without spaces",
      );
    }
    tokenSha256 = tokenDigest(token);
  } else if (config.tokenSha256 !== undefined) {
    tokenSha256 = Uint8Array.from(
      config.tokenSha256.match(/../g)!,
      (pair) => Number.parseInt(pair, 16),
    );
  }
  return {
    ...(tokenSha256 && { tokenSha256 }),
    ...(config.users && { checkUser }),
  };
}
