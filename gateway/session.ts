/**
 * One client: negotiate -> authenticate -> rules -> dispatch by command.
 *
 * @module
 */

import { endpointFromNetAddr, type IpEndpoint } from "../net/address.ts";
import {
  encodeMethodSelection,
  encodePasswordAuthReply,
  encodeReply,
  readGreeting,
  readPasswordAuthRequest,
  readRequest,
  ZERO_TARGET,
} from "../socks5/codec.ts";
import { SocksProtocolError, TruncatedMessageError } from "../socks5/errors.ts";
import { ExactReader } from "../socks5/exact_reader.ts";
import { AuthMethod, Command, Reply, type ReplyCode, type SocksRequest } from "../socks5/types.ts";
import type { Resolver } from "../resolver/mod.ts";
import { handleBind } from "./bind.ts";
import type { Config, ProxyProtocolMode, UserConfig } from "./config/types.ts";
import { handleConnect } from "./connect.ts";
import type { ConnectionRecord } from "./observe/connection_log.ts";
import type { GatewayMetrics } from "./observe/metrics.ts";
import { readProxyHeader } from "./proxy_protocol.ts";
import { handleResolve } from "./resolve.ts";
import type { AccessRules } from "./rules.ts";
import type { StandIns } from "./stand_ins.ts";
import { handleUdpAssociate } from "./udp_associate.ts";
import type { Dialer } from "./upstream/types.ts";
import type { Router } from "./upstream/router.ts";
import type { TranslationService } from "./translate.ts";

/** What every session shares: configuration and the gateway's services. */
export interface SessionServices {
  /** The validated configuration. */
  readonly config: Config;
  /** Compiled access rules. */
  readonly rules: AccessRules;
  /** Direct outbound connections (BIND and UDP peers, unrouted CONNECTs). */
  readonly dialer: Dialer;
  /** Picks the dialer for a CONNECT: direct, or a chain of upstream gateways. */
  readonly route: Router;
  /** Protocol translators (FTP, ...). */
  readonly translation: TranslationService;
  /** The gateway's resolver (BIND peers and UDP destinations given by name). */
  readonly resolver: Resolver;
  /** RESOLVE's stand-in addresses, or `null` when `resolver.stand_ins` is `never`. */
  readonly standIns: StandIns | null;
  /** Users by name. */
  readonly users: ReadonlyMap<string, UserConfig>;
  /** True when a client at this address is on the gateway host (loopback only). */
  readonly isLocalAddress: (endpoint: IpEndpoint) => boolean;
  /** Aborted when the gateway stops draining: relays close at once. */
  readonly shutdown: AbortSignal;
  /** Receives one record per finished connection. */
  readonly record: (record: ConnectionRecord) => void;
  /**
   * Takes descriptors beyond a connection's two (UDP relay sockets) from the budget the open
   * files limit leaves; returns their release, or `null` when they do not fit.
   */
  readonly reserveDescriptors: (count: number) => (() => void) | null;
  /** Metrics that are not in the record (active relays). */
  readonly metrics?: GatewayMetrics;
  /**
   * Checks RFC 1929 credentials of `client` under the failed-login limit (counting the attempt
   * in flight, the failure afterwards). Resolves `"blocked"` without checking the password when
   * the client is over the limit, `"busy"` when password checks are saturated.
   */
  readonly authenticate: (
    client: IpEndpoint,
    username: string,
    password: string,
    signal: AbortSignal,
  ) => Promise<LoginVerdict>;
  /**
   * True (and counted) when the client is over the auth failure limit: it gets `05 FF`. The
   * gateway checks at accept too; this covers clients known from a PROXY protocol header.
   */
  readonly refuseAuth?: (client: IpEndpoint) => boolean;
}

/** What {@linkcode SessionServices.authenticate} says of a login. */
export type LoginVerdict = "accepted" | "rejected" | "blocked" | "busy";

const LOGIN_FAILURES: Record<Exclude<LoginVerdict, "accepted">, string> = {
  rejected: "authentication failed",
  blocked: "too many failed logins",
  busy: "authentication busy",
};

/** A session after the handshake: what command handlers get. */
export interface Handshaken {
  /** The client connection. */
  readonly conn: Deno.TcpConn;
  /** Buffered reader over `conn` (holds bytes pipelined after the request). */
  readonly reader: ExactReader;
  /** The client's address and port. */
  readonly client: IpEndpoint;
  /** The gateway address the client reached. */
  readonly local: IpEndpoint;
  /**
   * True when the client is on the gateway host: it connected over loopback (and, behind a
   * PROXY protocol header, the header's source is loopback too).
   */
  readonly clientIsLocal: boolean;
  /** RFC 1929 user, if authenticated. */
  readonly user?: string;
  /** The request. */
  readonly request: SocksRequest;
  /** When the client was accepted (ms, performance clock). */
  readonly startedAt: number;
  /** Accept to complete request, in ms. */
  readonly handshakeMs?: number;
}

const FAILURE_LINGER_MS = 1000;

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

/** Sends a complete failure reply, then closes "shortly after" (RFC 1928 §6). */
export async function failAndClose(conn: Deno.TcpConn, reply: ReplyCode): Promise<void> {
  try {
    await writeAll(conn, encodeReply({ reply, bound: ZERO_TARGET }));
  } catch { /* the client is gone */ }
  await lingerAndClose(conn);
}

/**
 * Closes after a half-close and a short wait for the client's own FIN, so that bytes the client
 * sent meanwhile do not turn our close into a reset that destroys the reply in flight.
 */
export async function lingerAndClose(conn: Deno.TcpConn): Promise<void> {
  try {
    await conn.closeWrite();
    const sink = new Uint8Array(512);
    const deadline = AbortSignal.timeout(FAILURE_LINGER_MS);
    const closed = new Promise<void>((resolve) =>
      deadline.addEventListener("abort", () => resolve(), { once: true })
    );
    const drain = (async () => {
      while (!deadline.aborted && (await conn.read(sink)) !== null) { /* discard */ }
    })().catch(() => {});
    await Promise.race([drain, closed]);
  } catch { /* already gone */ }
  try {
    conn.close();
  } catch { /* already closed */ }
}

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
  const reader = new ExactReader(conn);
  const timeoutMs = services.config.timeouts.handshakeMs;
  const handshakeOver = new AbortController();
  const timer = setTimeout(() => {
    handshakeOver.abort();
    try {
      conn.close();
    } catch { /* closed already */ }
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
        reason: error instanceof Error ? error.message : String(error),
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
  const session: Handshaken = {
    conn,
    reader,
    client,
    local,
    // A PROXY header cannot make a remote peer local, nor can one that names no client.
    clientIsLocal: !clientUnknown && services.isLocalAddress(client) &&
      services.isLocalAddress(peer),
    request: outcome.request,
    startedAt,
    handshakeMs: performance.now() - startedAt,
    ...(outcome.user !== undefined ? { user: outcome.user } : {}),
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
  await failAndClose(conn, Reply.CommandNotSupported);
  services.record({
    ...base,
    ...(session.user !== undefined ? { user: session.user } : {}),
    target: outcome.request.target,
    outcome: "rejected",
    reason: known
      ? `command ${outcome.request.command} not supported on a chained route`
      : `command ${outcome.request.command} not supported`,
    reply: Reply.CommandNotSupported,
  });
}
