/**
 * One client of the HTTP proxy front door, from accept to close: requests read one after the
 * other (pipelined ones wait in the buffer, so responses go out in order), each authorised,
 * then either a `CONNECT host:port` tunnel (the core relay, as a SOCKS CONNECT) or a forwarded
 * absolute-form request over a kept upstream connection (a new one when the host changes).
 *
 * Never a hang: the request head must arrive within `timeouts.handshake` (408 otherwise), an
 * idle kept-alive connection is closed after `timeouts.idle`, and so is an exchange in which
 * nothing moves either way for that long (504 when no response has started).
 *
 * @module
 */

import { endpointFromNetAddr } from "../../net/address.ts";
import { errorText } from "../../net/error_text.ts";
import { closeQuietly, writeAll } from "../../net/io.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import type { ConnectionRecord } from "../observe/connection_log.ts";
import { familyPair, formatTarget } from "../observe/connection_log.ts";
import { relay } from "../relay/relay.ts";
import { lingerAndClose } from "../replies.ts";
import type { UserAdmission } from "../limits/user_limits.ts";
import type { SessionServices } from "../session_types.ts";
import type { Dialed } from "../upstream/types.ts";
import { HttpLogin, LoginError } from "./auth.ts";
import { copyBody } from "./body.ts";
import { dialTarget, type HttpDial, type HttpPrincipal } from "./dial.ts";
import { HttpError } from "./errors.ts";
import { endToEndFields, serializeHead, wantsKeepAlive, withVia } from "./headers.ts";
import {
  type BodyFraming,
  type Field,
  readRequestHead,
  readResponseHead,
  requestFraming,
  type RequestHead,
  responseFraming,
} from "./message.ts";
import { HttpReader } from "./reader.ts";
import { CONNECT_ESTABLISHED, errorResponse } from "./responses.ts";
import { type AbsoluteTarget, parseAbsoluteTarget, parseConnectTarget } from "./target.ts";

/** Options of {@linkcode runHttpSession}. */
export interface RunHttpSessionOptions {
  /** Bytes already read from the connection (the first segment, when sniffed). */
  readonly prelude?: Uint8Array;
}

/** The kept connection to the last forwarded request's server. */
interface Upstream {
  readonly key: string;
  readonly dialed: Dialed;
  readonly reader: HttpReader;
}

/** Record fields of one request, filled as it goes. */
type RequestRecord = Omit<ConnectionRecord, "outcome">;

/** One client connection of the front: what serving any of its requests needs. */
interface ClientConnection {
  readonly conn: Deno.TcpConn;
  readonly reader: HttpReader;
  readonly services: SessionServices;
  /** Who asks (its user changes when a later request logs in as another). */
  readonly who: HttpPrincipal;
}

/** Why a wait for the client ended early. */
class TimedOut extends Error {}

/**
 * Runs `promise` (a read on `conn`), closing `conn` when it takes longer than `ms`; `onExpire`
 * runs first (it may write a last response). Rejects with {@linkcode TimedOut} then.
 */
async function within<T>(
  conn: Deno.Conn,
  ms: number,
  promise: Promise<T>,
  onExpire?: () => Promise<void>,
): Promise<T> {
  let expired = false;
  const timer = setTimeout(async () => {
    expired = true;
    try {
      await onExpire?.();
    } catch { /* gone */ }
    closeQuietly(conn);
  }, ms);
  try {
    return await promise;
  } catch (error) {
    if (expired) throw new TimedOut();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `onIdle` once when `ms` pass without {@linkcode IdleWatch.touch} (one timer, re-armed
 * only when it fires, so a busy stream costs no timer churn).
 */
class IdleWatch {
  #last = performance.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #ms: number;
  readonly #onIdle: () => void;

  constructor(ms: number, onIdle: () => void) {
    this.#ms = ms;
    this.#onIdle = onIdle;
    this.#arm(ms);
  }

  #arm(delay: number): void {
    this.#timer = setTimeout(() => {
      const quiet = performance.now() - this.#last;
      if (quiet >= this.#ms) this.#onIdle();
      else this.#arm(this.#ms - quiet);
    }, delay);
  }

  /** Records progress. */
  touch(): void {
    this.#last = performance.now();
  }

  /** `sink` with every write recorded as progress. */
  sink(sink: { write(bytes: Uint8Array): Promise<number> }): {
    write(bytes: Uint8Array): Promise<number>;
  } {
    return {
      write: (bytes) => {
        this.touch();
        return sink.write(bytes);
      },
    };
  }

  /** Stops watching. */
  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** Runs one HTTP proxy client; never throws. */
export async function runHttpSession(
  conn: Deno.TcpConn,
  services: SessionServices,
  options: RunHttpSessionOptions = {},
): Promise<void> {
  const client = endpointFromNetAddr(conn.remoteAddr);
  const who: HttpPrincipal & { user?: string } = {
    client,
    local: endpointFromNetAddr(conn.localAddr),
    clientIsLocal: services.isLocalAddress(client),
  };
  const reader = new HttpReader(conn, options.prelude);
  const connection: ClientConnection = { conn, reader, services, who };
  const login = new HttpLogin();
  const { handshakeMs, idleMs } = services.config.timeouts;
  let upstream: Upstream | null = null;
  // The per-user limits hold one place per client connection, as a SOCKS session does: taken
  // at the first authorised request, given back when the connection ends (or taken anew when a
  // later request logs in as another user).
  let admitted: { readonly user: string | undefined; readonly admission: UserAdmission } | null =
    null;
  let first = true;
  let connStart = performance.now();
  try {
    while (true) {
      let head: RequestHead | null;
      const startedAt = first ? connStart : performance.now();
      const base: RequestRecord = { client, startedAt };
      try {
        // Between requests a kept-alive client may wait (idle timeout); once it starts a head,
        // the whole head must arrive within the handshake timeout (slowloris).
        if (!first && !(await within(conn, idleMs, reader.peek()))) break;
        head = await within(
          conn,
          handshakeMs,
          readRequestHead(reader),
          () => writeAll(conn, errorResponse(408, "request header timeout")),
        );
      } catch (error) {
        if (error instanceof TimedOut) {
          if (first || reader.buffered > 0) {
            services.record({
              ...base,
              outcome: "rejected",
              reason: "http: request header timeout",
            });
          }
          return;
        }
        if (error instanceof HttpError) {
          await refuse(conn, services, base, error);
          return;
        }
        // The client's stream failed between requests: it is gone.
        if (!first) return;
        throw error;
      }
      if (head === null) {
        if (first) {
          services.record({
            ...base,
            outcome: "rejected",
            clientClosed: true,
            reason: "client closed before its request",
          });
        }
        return;
      }
      const headMs = performance.now() - startedAt;
      first = false;
      connStart = 0;
      const request: RequestRecord = { ...base, handshakeMs: headMs };
      try {
        const user = await login.authorize(services, {
          client,
          fields: head.fields,
          signal: AbortSignal.any([AbortSignal.timeout(handshakeMs), services.shutdown]),
        });
        if (user !== undefined && who.user !== user) {
          who.user = user;
          services.noteSession?.(conn, { user });
        }
      } catch (error) {
        const user = error instanceof LoginError ? error.user : undefined;
        await refuse(
          conn,
          services,
          { ...request, ...(user !== undefined ? { user } : {}) },
          error instanceof HttpError ? error : new HttpError(503, errorText(error)),
        );
        return;
      }
      const withUser: RequestRecord = who.user !== undefined
        ? { ...request, user: who.user }
        : request;
      if (services.admitUser && (admitted === null || admitted.user !== who.user)) {
        admitted?.admission.release();
        admitted = null;
        const admission = services.admitUser(who.user);
        if (typeof admission === "string") {
          const reason = admission === "quota"
            ? "user quota spent for this period"
            : "user connection limit reached";
          await refuse(
            conn,
            services,
            { ...withUser, refusal: admission },
            new HttpError(403, reason),
          );
          return;
        }
        admitted = { user: who.user, admission };
      }
      if (head.method === "CONNECT") {
        closeUpstream(upstream);
        upstream = null;
        await tunnel(connection, head, withUser, admitted?.admission.throttle);
        return;
      }
      const kept = await forward(connection, head, withUser, upstream);
      upstream = kept.upstream;
      if (!kept.keepClient) break;
    }
    closeUpstream(upstream);
    upstream = null;
    await lingerAndClose(conn);
  } catch (error) {
    services.record({
      client,
      startedAt: connStart || performance.now(),
      outcome: "rejected",
      reason: `http: ${errorText(error)}`,
    });
    closeQuietly(conn);
  } finally {
    closeUpstream(upstream);
    admitted?.admission.release();
  }
}

function closeUpstream(upstream: Upstream | null): void {
  if (upstream !== null) closeQuietly(upstream.dialed.conn);
}

/** Sends the error response of `error`, closes, and records the refusal. */
async function refuse(
  conn: Deno.TcpConn,
  services: SessionServices,
  record: RequestRecord,
  error: HttpError,
): Promise<void> {
  try {
    await writeAll(conn, errorResponse(error.status, error.message));
  } catch { /* gone */ }
  await lingerAndClose(conn);
  services.record({
    ...record,
    outcome: "rejected",
    reason: `http ${error.status}: ${error.message}`,
  });
}

/**
 * Dials `target` for a request of `connection` and notes the session's rule subject; when the
 * dial fails, refuses the request with the dial's status (403, 502, 504) and returns `null`.
 */
async function dialOrRefuse(
  connection: ClientConnection,
  base: RequestRecord,
  target: SocksTarget,
): Promise<Extract<HttpDial, { ok: true }> | null> {
  const { conn, services, who } = connection;
  const dial = await dialTarget(services, { ...who, target });
  if (!dial.ok) {
    await refuse(
      conn,
      services,
      { ...base, connectMs: dial.connectMs },
      new HttpError(dial.status, dial.reason),
    );
    return null;
  }
  services.noteSession?.(conn, { subject: dial.subject });
  return dial;
}

/**
 * `CONNECT host:port`: dial, answer 200, then the core relay until either side ends, under the
 * user's throttles (bandwidth caps, quota) when it has any.
 */
async function tunnel(
  connection: ClientConnection,
  head: RequestHead,
  record: RequestRecord,
  throttle: UserAdmission["throttle"],
): Promise<void> {
  const { conn, reader, services, who } = connection;
  let target: SocksTarget;
  try {
    target = parseConnectTarget(head.target);
    if (requestFraming(head).kind !== "none") throw new HttpError(400, "CONNECT with a body");
  } catch (error) {
    await refuse(conn, services, { ...record, command: "http-connect" }, asHttpError(error));
    return;
  }
  const base: RequestRecord = { ...record, command: "http-connect", target };
  const dial = await dialOrRefuse(connection, base, target);
  if (dial === null) return;
  const { dialed } = dial;
  const connected: RequestRecord = { ...base, connectMs: dial.connectMs, used: dialed.remote };
  try {
    await writeAll(conn, CONNECT_ESTABLISHED);
  } catch (error) {
    closeQuietly(dialed.conn);
    closeQuietly(conn);
    services.record({
      ...connected,
      outcome: "rejected",
      reason: `http: client gone before relay: ${errorText(error)}`,
    });
    return;
  }
  // Counted as a SOCKS CONNECT is (status page, metrics): by command and by family pair.
  const families = familyPair(who.client, dialed.remote);
  services.metrics?.activeRelays.inc(["connect"]);
  services.metrics?.activeFamilies.inc(["connect", families]);
  const result = await relay(conn, dialed.conn, {
    idleMs: services.config.timeouts.idleMs,
    signal: services.shutdown,
    clientPrelude: reader.takeBuffered(),
    ...(throttle && { throttle }),
  }).finally(() => {
    services.metrics?.activeRelays.dec(["connect"]);
    services.metrics?.activeFamilies.dec(["connect", families]);
  });
  services.record({
    ...connected,
    outcome: "relayed",
    bytesUp: result.clientToServer,
    bytesDown: result.serverToClient,
    reason: `http CONNECT ${
      result.end === "error" ? `error: ${errorText(result.error)}` : result.end
    }`,
  });
}

function asHttpError(error: unknown): HttpError {
  return error instanceof HttpError ? error : new HttpError(400, errorText(error));
}

/** What {@linkcode forward} leaves for the next request. */
interface Forwarded {
  /** Whether the client connection carries on. */
  readonly keepClient: boolean;
  /** The upstream to reuse, or `null`. */
  readonly upstream: Upstream | null;
}

/** What one request/response exchange over an upstream did. */
interface Exchange {
  /** The first error, if it failed. */
  readonly failure?: unknown;
  /** True once any response byte went to the client (no error response possible then). */
  readonly responseStarted: boolean;
  /** True once any byte of a response came from the server. */
  readonly answered: boolean;
  /** The final status, when it succeeded. */
  readonly status?: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Whether the client connection may carry on. */
  readonly keepClient: boolean;
  /** Whether the upstream connection may be reused. */
  readonly keepServer: boolean;
}

/**
 * Forwards one absolute-form request and its response. A kept upstream that turns out closed
 * before any response byte (the server's own keep-alive timeout) is dialed anew once, for a
 * request without a body (nothing of the client's was consumed).
 */
async function forward(
  connection: ClientConnection,
  head: RequestHead,
  record: RequestRecord,
  kept: Upstream | null,
): Promise<Forwarded> {
  const { conn, reader, services, who } = connection;
  let upstream = kept;
  const drop = (): Forwarded => {
    closeUpstream(upstream);
    return { keepClient: false, upstream: null };
  };
  let base: RequestRecord = { ...record, command: "http" };
  let absolute: AbsoluteTarget;
  let framing: BodyFraming;
  try {
    absolute = parseAbsoluteTarget(head.target);
    framing = requestFraming(head);
  } catch (error) {
    await refuse(conn, services, base, asHttpError(error));
    return drop();
  }
  base = { ...base, target: absolute.target };
  // The user is part of the key: rules and routes were applied to whoever dialed.
  const key = `${who.user ?? ""}\0${formatTarget(absolute.target)}`;
  if (upstream !== null && upstream.key !== key) {
    closeUpstream(upstream);
    upstream = null;
  }
  let result: Exchange | undefined;
  let connectMs: number | undefined;
  for (let attempt = 0; attempt < 2; attempt++) {
    const reused = upstream !== null;
    if (upstream === null) {
      const dial = await dialOrRefuse(connection, base, absolute.target);
      if (dial === null) return drop();
      connectMs = dial.connectMs;
      upstream = { key, dialed: dial.dialed, reader: new HttpReader(dial.dialed.conn) };
    }
    result = await exchange(conn, reader, services, head, absolute, framing, upstream);
    const stale = result.failure !== undefined && reused && !result.answered &&
      framing.kind === "none" &&
      !(result.failure instanceof HttpError && result.failure.status === 504);
    if (!stale) break;
    closeUpstream(upstream);
    upstream = null;
  }
  const done = result!;
  const up = upstream!;
  base = {
    ...base,
    used: up.dialed.remote,
    ...(connectMs !== undefined ? { connectMs } : {}),
  };
  if (done.failure !== undefined) {
    const error = done.failure instanceof HttpError
      ? done.failure
      : new HttpError(502, `server connection: ${errorText(done.failure)}`);
    if (!done.responseStarted) {
      await refuse(conn, services, base, error);
    } else {
      services.record({
        ...base,
        outcome: "rejected",
        bytesUp: done.bytesUp,
        bytesDown: done.bytesDown,
        reason: `http: ${error.message} (after the response started)`,
      });
    }
    // Also unblocks a request body still waiting for the client.
    closeQuietly(conn);
    return drop();
  }
  services.record({
    ...base,
    outcome: "relayed",
    bytesUp: done.bytesUp,
    bytesDown: done.bytesDown,
    reason: `http ${head.method} ${done.status}`,
  });
  if (!done.keepServer) {
    closeUpstream(up);
    return { keepClient: done.keepClient, upstream: null };
  }
  return { keepClient: done.keepClient, upstream: up };
}

/**
 * Sends the request head and streams its body up while the response streams down (a server may
 * answer `100 Continue` first, or answer early); never throws.
 */
async function exchange(
  conn: Deno.TcpConn,
  reader: HttpReader,
  services: SessionServices,
  head: RequestHead,
  absolute: AbsoluteTarget,
  framing: BodyFraming,
  up: Upstream,
): Promise<Exchange> {
  const fields: Field[] = [
    ["Host", absolute.host],
    ...endToEndFields(head.fields).filter(([name]) => name.toLowerCase() !== "host"),
  ];
  if (framing.kind === "chunked") fields.push(["Transfer-Encoding", "chunked"]);
  const requestHead = serializeHead(
    `${head.method} ${absolute.path} HTTP/1.1`,
    withVia(fields, head.minor),
  );
  const clientKeepAlive = wantsKeepAlive(head.fields, head.minor);
  const idleMs = services.config.timeouts.idleMs;
  let bytesUp = requestHead.length;
  let bytesDown = 0;
  let responseStarted = false;
  let answered = false;
  let keepClient = false;
  let keepServer = false;
  let failure: unknown;
  const fail = (error: unknown) => {
    failure ??= error;
    closeQuietly(up.dialed.conn);
  };

  // A body that stalls either way for `timeouts.idle` ends the exchange, as an idle relay ends.
  const idle = new IdleWatch(idleMs, () => {
    fail(new HttpError(504, `nothing from the server (or the client's body) for ${idleMs} ms`));
    // Once the response has started, no error response is possible: a client that stopped
    // reading must not hold the exchange either.
    if (responseStarted) closeQuietly(conn);
  });
  const toServer = idle.sink(up.dialed.conn);
  const toClient = idle.sink(conn);
  const sendUp = (async () => {
    await writeAll(up.dialed.conn, requestHead);
    bytesUp += await copyBody({ framing, from: reader }, toServer);
  })();
  sendUp.catch(fail);
  const sendDown = (async () => {
    while (true) {
      const response = await readResponseHead(up.reader).catch((error) => {
        throw error instanceof HttpError
          ? error
          : new HttpError(502, `server connection: ${errorText(error)}`);
      });
      answered = true;
      if (response.status === 101) {
        throw new HttpError(502, "the server switched protocols, which this proxy does not relay");
      }
      const interim = response.status < 200;
      const body = responseFraming(head.method, response);
      const dechunk = body.kind === "chunked" && head.minor === 0;
      keepServer = !interim && body.kind !== "close" &&
        wantsKeepAlive(response.fields, response.minor);
      keepClient = clientKeepAlive && body.kind !== "close" && !dechunk;
      const out = endToEndFields(
        response.fields,
        body.kind === "chunked" || body.kind === "close",
      );
      if (!interim) {
        if (body.kind === "chunked" && !dechunk) out.push(["Transfer-Encoding", "chunked"]);
        if (!keepClient) out.push(["Connection", "close"]);
        else if (head.minor === 0) out.push(["Connection", "keep-alive"]);
      }
      if (interim && head.minor === 0) continue; // no 1xx to an HTTP/1.0 client
      const responseHead = serializeHead(
        `HTTP/1.1 ${response.status} ${response.reason}`,
        withVia(out, response.minor),
      );
      responseStarted = true;
      await writeAll(conn, responseHead);
      bytesDown += responseHead.length;
      if (interim) continue;
      idle.touch();
      bytesDown += await copyBody({ framing: body, from: up.reader }, toClient, {
        dechunk,
        errorStatus: 502,
      });
      return response.status;
    }
  })();
  sendDown.catch(fail);

  let status: number | undefined;
  try {
    status = await sendDown;
    await sendUp;
  } catch {
    /* failure holds the first error */
  } finally {
    idle.stop();
  }
  return {
    ...(failure !== undefined ? { failure } : {}),
    ...(status !== undefined ? { status } : {}),
    responseStarted,
    answered,
    bytesUp,
    bytesDown,
    keepClient,
    keepServer,
  };
}
