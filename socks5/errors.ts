/**
 * Errors callers must catch: a SOCKS reply code or a malformed message.
 *
 * @module
 */

import { REPLY_NAMES, type ReplyCode } from "./types.ts";

/** A SOCKS failure that carries its REP code, end to end (refused stays 5 everywhere). */
export class SocksReplyError extends Error {
  /** The RFC 1928 REP code. */
  readonly reply: ReplyCode;

  /** Creates an error for `reply`; `message` defaults to the RFC's name of the code. */
  constructor(reply: ReplyCode, message?: string, options?: ErrorOptions) {
    super(message ?? `SOCKS reply ${reply}: ${REPLY_NAMES[reply] ?? "unassigned"}`, options);
    this.name = "SocksReplyError";
    this.reply = reply;
  }
}

/**
 * A message that breaks RFC 1928/1929. `reply` is the REP code a server answers with when a
 * reply is still possible (7 for an unknown command, 8 for an unknown address type), or
 * `undefined` when the only answer is to close.
 */
export class SocksProtocolError extends Error {
  /** REP code to answer with, if any. */
  readonly reply: ReplyCode | undefined;

  /** Creates a protocol error with an optional REP code to answer with. */
  constructor(message: string, reply?: ReplyCode) {
    super(message);
    this.name = "SocksProtocolError";
    this.reply = reply;
  }
}

/** The peer closed the stream in the middle of a message. */
export class TruncatedMessageError extends SocksProtocolError {
  /** Creates the error for a message cut short after `received` of `expected` bytes. */
  constructor(what: string) {
    super(`Cannot read ${what}: stream ended mid-message`);
    this.name = "TruncatedMessageError";
  }
}
