/**
 * Maps connection failures to their precise RFC 1928 reply codes, so that a refused connection
 * is REP 5 everywhere and never a catch-all.
 *
 * | cause                                   | REP |
 * | --------------------------------------- | --- |
 * | ECONNREFUSED                            | 5   |
 * | ENETUNREACH, no route/address of family | 3   |
 * | EHOSTUNREACH, connect timeout, no name  | 4   |
 * | EACCES/EPERM (local firewall)           | 2   |
 * | anything else                           | 1   |
 *
 * @module
 */

import { SocksReplyError } from "../socks5/errors.ts";
import { Reply, type ReplyCode } from "../socks5/types.ts";

const BY_ERRNO: Readonly<Record<string, ReplyCode>> = {
  ECONNREFUSED: Reply.ConnectionRefused,
  ENETUNREACH: Reply.NetworkUnreachable,
  EADDRNOTAVAIL: Reply.NetworkUnreachable,
  EAFNOSUPPORT: Reply.NetworkUnreachable,
  EHOSTUNREACH: Reply.HostUnreachable,
  EHOSTDOWN: Reply.HostUnreachable,
  ETIMEDOUT: Reply.HostUnreachable,
  EACCES: Reply.NotAllowedByRuleset,
  EPERM: Reply.NotAllowedByRuleset,
};

/** Which reply wins when several attempts failed differently: the most telling one. */
const PRIORITY: readonly ReplyCode[] = [
  Reply.NotAllowedByRuleset,
  Reply.ConnectionRefused,
  Reply.HostUnreachable,
  Reply.NetworkUnreachable,
  Reply.GeneralFailure,
];

/** The REP code for one failure (a connect error, a timeout, a {@linkcode SocksReplyError}). */
export function replyForError(error: unknown): ReplyCode {
  if (error instanceof SocksReplyError) return error.reply;
  if (error instanceof DOMException && (error.name === "TimeoutError")) {
    return Reply.HostUnreachable;
  }
  if (error instanceof Deno.errors.ConnectionRefused) return Reply.ConnectionRefused;
  if (error instanceof Deno.errors.NetworkUnreachable) return Reply.NetworkUnreachable;
  if (error instanceof Deno.errors.TimedOut) return Reply.HostUnreachable;
  if (error instanceof Deno.errors.AddrNotAvailable) return Reply.NetworkUnreachable;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && Object.hasOwn(BY_ERRNO, code)) return BY_ERRNO[code]!;
  const errors = (error as { errors?: unknown } | null)?.errors;
  if (Array.isArray(errors) && errors.length > 0) return replyForErrors(errors);
  return Reply.GeneralFailure;
}

/** The REP code for a set of failed attempts: the most telling of their codes. */
export function replyForErrors(errors: readonly unknown[]): ReplyCode {
  const codes = new Set(errors.map(replyForError));
  for (const code of PRIORITY) if (codes.has(code)) return code;
  return codes.values().next().value ?? Reply.GeneralFailure;
}
