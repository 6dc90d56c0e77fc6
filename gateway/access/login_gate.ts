/**
 * One RFC 1929 login through the gateway's defences: the failed-login limiter of the client's
 * key (an IPv4 address or an IPv6 /64, see `client_key.ts`), then the password check with the
 * client's fair share of the scrypt slots. A check refused as busy (the key's own share full)
 * counts as a failed login, so a client that floods the checks is soon blocked instead of
 * crowding others out for free; a check refused as crowded (the queue full of other keys'
 * checks) is answered busy but never counted, so a flood cannot get another client blocked.
 *
 * @module
 */

import type { AuthFailureLimiter } from "../limits/auth_limiter.ts";
import type { PasswordVerdict } from "./password_verifier.ts";
import type { LoginVerdict } from "../session_types.ts";

/** What {@linkcode checkLogin} uses. */
export interface LoginGate {
  /** The failed-login limiter, by client key. */
  readonly limiter: AuthFailureLimiter;
  /** The password check, fair by client key. */
  readonly check: (username: string, password: string, key: string) => Promise<PasswordVerdict>;
  /** Counts a refusal by a limit (`auth_failures`, `auth_busy`). */
  readonly countRejection?: (limit: "auth_failures" | "auth_busy") => void;
  /** Counts a checked and wrong login. */
  readonly countFailure?: () => void;
}

/**
 * Checks a login of the client `key`: `"blocked"` (unchecked) over the failed-login limit,
 * else the password check's verdict (`"crowded"` answered as `"busy"`); anything but
 * `"accepted"` and `"crowded"` counts as a failure of `key`.
 */
export async function checkLogin(
  gate: LoginGate,
  key: string,
  username: string,
  password: string,
  signal: AbortSignal,
): Promise<LoginVerdict> {
  const attempt = await gate.limiter.acquire(key, signal);
  if (!attempt) {
    if (!signal.aborted) gate.countRejection?.("auth_failures");
    return "blocked";
  }
  let failed = true;
  try {
    const verdict = await gate.check(username, password, key);
    failed = verdict !== "accepted" && verdict !== "crowded";
    if (verdict === "rejected") gate.countFailure?.();
    if (verdict === "busy" || verdict === "crowded") gate.countRejection?.("auth_busy");
    return verdict === "crowded" ? "busy" : verdict;
  } finally {
    attempt.finish(failed);
  }
}
