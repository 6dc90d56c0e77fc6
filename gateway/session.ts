/**
 * One client: negotiate -> authenticate -> rules -> dispatch by command.
 *
 * @module
 */

import { endpointFromNetAddr, type IpEndpoint } from "../net/address.ts";
import { errorText } from "../net/error_text.ts";
import { closeQuietly, writeAll } from "../net/io.ts";
import {
  encodeMethodSelection,
  encodePasswordAuthReply,
  readGreeting,
  readPasswordAuthRequest,
  readRequest,
} from "../socks5/codec.ts";
import { SocksProtocolError, TruncatedMessageError } from "../socks5/errors.ts";
import { ExactReader } from "../socks5/exact_reader.ts";
import { AuthMethod, Command, Reply, type ReplyCode, type SocksRequest } from "../socks5/types.ts";
import { handleBind } from "./commands/bind.ts";
import type { ProxyProtocolMode } from "./config/types.ts";
import { handleConnect } from "./commands/connect.ts";
import { readProxyHeader } from "./listen/proxy_protocol.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import { failAndClose, lingerAndClose } from "./replies.ts";
import { handleResolve } from "./commands/resolve.ts";
import type { Handshaken, LoginVerdict, SessionServices } from "./session_types.ts";
import { handleUdpAssociate } from "./commands/udp_associate.ts";

const LOGIN_FAILURES: Record<Exclude<LoginVerdict, "accepted">, string> = {
  rejected: "authentication failed",
  blocked: "too many failed logins",
  busy: "authentication busy",
};

function selectMethod(offered: readonly number[], authRequired: boolean): number {
  if (authRequired) {
    return offered.includes(AuthMethod.UsernamePassword)
      ? AuthMethod.UsernamePassword
      : AuthMethod.NoAcceptableMethods;
  }
  return offered.includes(AuthMethod.NoAuthentication)
    ? AuthMethod.NoAuthentication
    : AuthMethod.NoAcceptableMethods;
}

/** Outcome of the handshake phase. */
type HandshakeOutcome =
  | { readonly ok: true; readonly user?: string; readonly request: SocksRequest }
  | {
    readonly ok: false;
    readonly reply?: ReplyCode;
    readonly reason: string;
    /** The client hung up between messages (see `ConnectionRecord.clientClosed`). */
    readonly clientClosed?: true;
    /** The configured user a failed login tried, for the record. */
    readonly user?: string;
  };

async function handshake(
  conn: Deno.TcpConn,
  reader: ExactReader,
  services: SessionServices,
  client: IpEndpoint,
  signal: AbortSignal,
): Promise<HandshakeOutcome> {
  const greeting = await readGreeting(reader);
  const refused = services.users.size > 0 && services.refuseAuth?.(client) === true;
  const method = refused
    ? AuthMethod.NoAcceptableMethods
    : selectMethod(greeting.methods, services.users.size > 0);
  await writeAll(conn, encodeMethodSelection(method));
  if (method === AuthMethod.NoAcceptableMethods) {
    return {
      ok: false,
      reason: refused ? "too many failed logins" : "no acceptable authentication method",
    };
  }
  let user: string | undefined;
  if (method === AuthMethod.UsernamePassword) {
    const credentials = await readPasswordAuthRequest(reader);
    // The limit is checked now, with the credentials, not at accept: attempts in flight count.
    const verdict = await services.authenticate(
      client,
      credentials.username,
      credentials.password,
      signal,
    );
    await writeAll(conn, encodePasswordAuthReply(verdict === "accepted" ? 0 : 1));
    if (verdict !== "accepted") {
      // The name tried is logged when it is a configured user; any other text in the user
      // field may be a password typed in the wrong field, and stays out of the log.
      const known = services.users.get(credentials.username);
      return known === undefined
        ? { ok: false, reason: `${LOGIN_FAILURES[verdict]}: unknown user` }
        : { ok: false, reason: LOGIN_FAILURES[verdict], user: known.name };
    }
    user = credentials.username;
    services.noteSession?.(conn, { user });
  }
  const request = await readRequest(reader);
  return user === undefined ? { ok: true, request } : { ok: true, user, request };
}

/** Options of {@linkcode runSession}: what the listener that accepted the client says. */
export interface RunSessionOptions {
  /**
   * The connection starts with a PROXY protocol header of this version, read inside the
   * handshake timeout; its source is the client that rules, logs and handlers see. Without a
   * valid header the connection is closed. @default undefined (no header)
   */
  readonly proxyProtocol?: ProxyProtocolMode;
  /** Bytes already read from the connection (the first segment, sniffed by a mixed listener). */
  readonly prelude?: Uint8Array;
}

/**
 * Runs one client from accept to close. Never throws: every failure becomes a reply code (when
 * a reply is still possible), a close, and a log record.
 */
export async function runSession(
  conn: Deno.TcpConn,
  services: SessionServices,
  options: RunSessionOptions = {},
): Promise<void> {
  const startedAt = performance.now();
  const peer = endpointFromNetAddr(conn.remoteAddr);
  let client = peer;
  // A PROXY header that names no client (LOCAL, UNKNOWN, UDP/UNIX): whoever it is, not local.
  let clientUnknown = false;
  const local = endpointFromNetAddr(conn.localAddr);
  const reader = options.prelude
    ? ExactReader.withPrelude(conn, options.prelude)
    : new ExactReader(conn);
  const timeoutMs = services.config.timeouts.handshakeMs;
  const handshakeOver = new AbortController();
  const timer = setTimeout(() => {
    handshakeOver.abort();
    closeQuietly(conn);
  }, timeoutMs);
  let outcome: HandshakeOutcome;
  try {
    if (options.proxyProtocol !== undefined) {
      const header = await readProxyHeader(reader, options.proxyProtocol);
      if (header.command === "proxy") client = header.source;
      else clientUnknown = true;
    }
    outcome = await handshake(conn, reader, services, client, handshakeOver.signal);
  } catch (error) {
    // The stream ended with nothing of a next message read: a port check or a client that
    // changed its mind, not a broken one.
    outcome = error instanceof TruncatedMessageError && reader.buffered === 0
      ? { ok: false, reason: "client closed before its request", clientClosed: true }
      : {
        ok: false,
        reason: errorText(error),
        ...(error instanceof SocksProtocolError && error.reply !== undefined
          ? { reply: error.reply }
          : {}),
      };
  } finally {
    clearTimeout(timer);
  }
  const base = {
    client,
    startedAt,
  };
  if (!outcome.ok) {
    if (outcome.reply !== undefined) await failAndClose(conn, outcome.reply);
    else await lingerAndClose(conn);
    services.record({
      ...base,
      ...(outcome.user !== undefined ? { user: outcome.user } : {}),
      ...(outcome.clientClosed ? { clientClosed: true } : {}),
      outcome: "rejected",
      reason: outcome.reason,
      ...(outcome.reply !== undefined ? { reply: outcome.reply } : {}),
    });
    return;
  }
  const { request, user } = outcome;
  // Refuses the handshaken request: the failure reply, then the record (its fields in order).
  const refuse = async (
    fields: Pick<ConnectionRecord, "refusal" | "reason"> & { readonly reply: ReplyCode },
  ): Promise<void> => {
    await failAndClose(conn, fields.reply);
    services.record({
      ...base,
      ...(user !== undefined ? { user } : {}),
      target: request.target,
      outcome: "rejected",
      ...fields,
    });
  };
  // Per-user limits: refused with REP 2 (a policy refusal, like the rules'), else the user's
  // place is held until the session ends, on every path.
  const admission = services.admitUser?.(outcome.user);
  if (typeof admission === "string") {
    await refuse({
      reply: Reply.NotAllowedByRuleset,
      refusal: admission,
      reason: admission === "quota"
        ? "user quota spent for this period"
        : "user connection limit reached",
    });
    return;
  }
  using _admitted = { [Symbol.dispose]: () => admission?.release() };
  const session: Handshaken = {
    conn,
    reader,
    client,
    local,
    // A PROXY header cannot make a remote peer local, nor can one that names no client.
    clientIsLocal: !clientUnknown && services.isLocalAddress(client) &&
      services.isLocalAddress(peer),
    ...(clientUnknown ? { clientUnknown: true as const } : {}),
    request: outcome.request,
    startedAt,
    handshakeMs: performance.now() - startedAt,
    ...(outcome.user !== undefined ? { user: outcome.user } : {}),
    ...(admission?.throttle ? { throttle: admission.throttle } : {}),
  };
  switch (outcome.request.command) {
    case Command.Connect:
      await handleConnect(session, services);
      return;
    case Command.Resolve:
    case Command.ResolvePtr:
      await handleResolve(session, services);
      return;
    case Command.Bind:
    case Command.UdpAssociate:
      // Only CONNECT is relayed through a chain; BIND and UDP on a chained route (matched by
      // DST) would bind on this gateway, where the route says the peer cannot be reached.
      if (!services.route(outcome.request.target).chained) {
        if (outcome.request.command === Command.Bind) await handleBind(session, services);
        else await handleUdpAssociate(session, services);
        return;
      }
      break;
  }
  const known = outcome.request.command === Command.Bind ||
    outcome.request.command === Command.UdpAssociate;
  await refuse({
    reason: known
      ? `command ${outcome.request.command} not supported on a chained route`
      : `command ${outcome.request.command} not supported`,
    reply: Reply.CommandNotSupported,
  });
}
