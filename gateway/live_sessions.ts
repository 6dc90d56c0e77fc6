/**
 * The live sessions as a reload sees them: which generation accepted each, the user it logged
 * in as, the rule subject its relay was allowed under. A reload keeps them running, except a
 * session whose user was removed or whose password changed, and (with `reload.recheck`) one
 * the new rules refuse; those are closed, counted and logged.
 *
 * A session that finishes its login or its dial under an older generation after a reload is
 * judged at once against the newest: a reload cannot be outrun by a login in flight.
 *
 * @module
 */

import type { RuleSubject } from "./access/rules.ts";
import type { LiveSessionInfo } from "./session_types.ts";
import { sameSection } from "./wiring.ts";
import type { Generation } from "./wiring.ts";

/** Why a reload closed a live session. */
export type ReloadCloseReason = "user_removed" | "password_changed" | "recheck";

/** One live session. */
interface LiveSession {
  /** The generation it was accepted under (its login was checked against that one's users). */
  readonly generation: Generation;
  user?: string;
  subject?: RuleSubject;
  /** Ends it (its relay closes both connections). */
  readonly close: () => void;
  closed: boolean;
}

/**
 * Whether a session accepted under `accepted`, logged in as `user` and allowed as `subject`,
 * may live on under `next`, or why not.
 */
export function reloadVerdict(
  accepted: Generation,
  info: LiveSessionInfo,
  next: Generation,
): ReloadCloseReason | null {
  if (info.user !== undefined) {
    const before = accepted.services.users.get(info.user);
    const after = next.services.users.get(info.user);
    if (after === undefined) return "user_removed";
    if (before !== undefined && !sameSection(before, after)) return "password_changed";
  }
  if (
    next.config.reload.recheck && info.subject !== undefined &&
    !next.services.rules.evaluate(info.subject).allow
  ) {
    return "recheck";
  }
  return null;
}

/** Options of {@linkcode LiveSessions}. */
export interface LiveSessionsOptions {
  /** The generation in force now. */
  readonly current: () => Generation;
  /** Called once for each session a reload closes (count it, log it). */
  readonly onClose: (reason: ReloadCloseReason, info: LiveSessionInfo) => void;
}

/** The live sessions of a gateway, keyed by their client connection. */
export class LiveSessions {
  readonly #options: LiveSessionsOptions;
  readonly #sessions = new Map<Deno.TcpConn, LiveSession>();

  /** Creates an empty table. */
  constructor(options: LiveSessionsOptions) {
    this.#options = options;
  }

  /** Number of sessions tracked. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Tracks the session of `conn`, accepted under `generation`; returns its removal. */
  add(conn: Deno.TcpConn, generation: Generation, close: () => void): () => void {
    this.#sessions.set(conn, { generation, close, closed: false });
    return () => this.#sessions.delete(conn);
  }

  /** Adds what the session tells (user, subject); judged at once when a reload came between. */
  note(conn: Deno.TcpConn, info: LiveSessionInfo): void {
    const session = this.#sessions.get(conn);
    if (!session) return;
    if (info.user !== undefined) session.user = info.user;
    if (info.subject !== undefined) session.subject = info.subject;
    const current = this.#options.current();
    if (session.generation !== current) this.#judge(session, current);
  }

  /** Closes the sessions `next` does not let live on; returns how many. */
  sweep(next: Generation): number {
    let closed = 0;
    for (const session of this.#sessions.values()) {
      if (this.#judge(session, next)) closed++;
    }
    return closed;
  }

  #judge(session: LiveSession, next: Generation): boolean {
    if (session.closed) return false;
    const info = {
      ...(session.user !== undefined && { user: session.user }),
      ...(session.subject !== undefined && { subject: session.subject }),
    };
    const reason = reloadVerdict(session.generation, info, next);
    if (reason === null) return false;
    session.closed = true;
    this.#options.onClose(reason, info);
    session.close();
    return true;
  }
}
