/**
 * The line loop for translator sessions: splits both directions into CRLF (or LF) lines with a
 * length cap, hands each line to the session's hooks, and relays untouched bytes otherwise.
 * The gateway calls {@linkcode runLineSession} (through `runTranslation`) instead of its relay.
 *
 * @module
 */

import { errorText } from "../net/error_text.ts";
import { closeQuietly, writeAll } from "../net/io.ts";
import { getLogger } from "@logtape/logtape";
import { HandBackStream, type PendingRead } from "./hand_back.ts";
import type { Line, LineIo, Side, TranslatorSession } from "./types.ts";

const logger = getLogger(["dualgate", "translators"]);

/** Default cap on one line, terminator included, in bytes. */
export const DEFAULT_MAX_LINE_BYTES = 4096;
const CHUNK_BYTES = 16 * 1024;

/** Options for {@linkcode runLineSession}. */
export interface LineSessionOptions {
  /** Aborting ends the session: both connections are closed. */
  readonly signal: AbortSignal;
  /** Longest line accepted, terminator included. @default 4096 */
  readonly maxLineBytes?: number;
  /**
   * A read already started on the server connection (a sniffed greeting): its bytes are
   * processed first, before the loop reads the server again.
   */
  readonly serverPending?: PendingRead;
  /** A session id for logs. @default "" */
  readonly id?: string;
  /**
   * Ends the session (`"idle"`) after this long with no bytes from either side while `busy`
   * is false: the relay idle timeout. @default no timeout
   */
  readonly idleMs?: number;
  /** True while the session has traffic elsewhere (its data channels): idleness waits. */
  readonly busy?: () => boolean;
}

/** Why a line session ended (`"detached"`: handed back, see `handBack`). */
export type LineSessionEnd =
  | "eof"
  | "closed"
  | "aborted"
  | "line-too-long"
  | "error"
  | "idle"
  | "detached";

/** The outcome of {@linkcode runLineSession}; it never rejects. */
export interface LineSessionResult {
  /** Why it ended. */
  readonly end: LineSessionEnd;
  /** The error, for `"error"`. */
  readonly error?: unknown;
  /** Bytes read from the client and handled by the loop (not those handed back). */
  readonly bytesUp: number;
  /** Bytes read from the server and handled by the loop (not those handed back). */
  readonly bytesDown: number;
  /**
   * For `"detached"`: both connections, still open, for the core relay; their reads return
   * what the loop had received and not handled first. Otherwise both are closed.
   */
  readonly handBack?: { readonly client: HandBackStream; readonly server: HandBackStream };
}

/** Decodes bytes as Latin-1 (each byte one UTF-16 unit), so text round-trips to the bytes. */
export function latin1Decode(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}

const utf8 = new TextEncoder();

/** Encodes text as Latin-1 when every unit fits a byte (the round trip), else as UTF-8. */
export function latin1Encode(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) return utf8.encode(text);
    bytes[i] = code;
  }
  return bytes;
}

/** Serialises writes to one connection so that concurrent lines never interleave. */
class SerialWriter {
  #conn: Deno.Conn;
  #tail: Promise<void> = Promise.resolve();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  write(bytes: Uint8Array): Promise<void> {
    const next = this.#tail.then(() => writeAll(this.#conn, bytes));
    this.#tail = next.catch(() => {});
    return next;
  }

  closeWrite(): Promise<void> {
    const next = this.#tail.then(() => this.#conn.closeWrite());
    this.#tail = next.catch(() => {});
    return next;
  }

  /** Resolves when every write queued so far has settled. */
  drain(): Promise<void> {
    return this.#tail;
  }
}

class LineTooLongError extends Error {
  readonly side: Side;
  constructor(side: Side, max: number) {
    super(`Cannot read line: the ${side} sent more than ${max} bytes without a line end`);
    this.side = side;
  }
}

/** What one direction's pump left when it stopped for a hand-back. */
interface Leftover {
  /** Bytes received and not handled, in order. */
  readonly received: Uint8Array[];
  /** A read still in flight. */
  pending?: PendingRead;
}

const DETACHED = Symbol("detached");

/**
 * Runs one translated session until both sides have ended, the session closes itself or
 * hands the connections back (`io.detach()`, a `"passthrough"` verdict), it is idle for
 * `idleMs`, or `options.signal` aborts. Takes ownership of both connections: they are closed
 * on return, except those handed back. Never rejects; hook errors end the session and are
 * logged.
 *
 * @example
 * ```ts ignore
 * const session = translator.startSession(ctx, broker);
 * const result = await runLineSession(session, clientConn, serverConn, { signal });
 * if (result.handBack) await relay(result.handBack.client, result.handBack.server);
 * ```
 */
export async function runLineSession(
  session: TranslatorSession,
  client: Deno.Conn,
  server: Deno.Conn,
  options: LineSessionOptions,
): Promise<LineSessionResult> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const controller = new AbortController();
  const toClient = new SerialWriter(client);
  const toServer = new SerialWriter(server);
  let end = "eof" as LineSessionEnd;
  let failure: unknown;
  const stop = (why: LineSessionEnd, error?: unknown) => {
    if (controller.signal.aborted) return;
    end = why;
    failure = error;
    controller.abort();
    // Closing both ends wakes the pending reads, which then see the abort.
    closeQuietly(client);
    closeQuietly(server);
  };
  const onOuterAbort = () => stop("aborted");
  if (options.signal.aborted) onOuterAbort();
  else options.signal.addEventListener("abort", onOuterAbort, { once: true });

  let detached = false;
  let onDetach!: (value: typeof DETACHED) => void;
  const detachRequested = new Promise<typeof DETACHED>((resolve) => onDetach = resolve);
  const detach = () => {
    if (detached || controller.signal.aborted) return;
    detached = true;
    onDetach(DETACHED);
  };
  const leftovers: Record<Side, Leftover> = {
    client: { received: [] },
    server: { received: [] },
  };
  const bytes = { client: 0, server: 0 };
  let active = false;
  const idleTimer = options.idleMs === undefined ? undefined : setInterval(() => {
    if (active || options.busy?.()) active = false;
    else stop("idle");
  }, options.idleMs);

  const io: LineIo = {
    sendToServer: (text) => toServer.write(latin1Encode(text + "\r\n")),
    sendToClient: (text) => toClient.write(latin1Encode(text + "\r\n")),
    close: () => stop("closed"),
    detach,
    signal: controller.signal,
  };

  const pump = async (side: Side): Promise<void> => {
    const from = side === "client" ? client : server;
    const to = side === "client" ? toServer : toClient;
    const hook = side === "client" ? session.onClientLine : session.onServerLine;
    const leftover = leftovers[side];
    const chunk = new Uint8Array(CHUNK_BYTES);
    const pending = new Uint8Array(maxLineBytes);
    let pendingLength = 0;

    const deliver = async (raw: Uint8Array) => {
      const terminated = raw.length > 0 && raw[raw.length - 1] === 0x0a;
      const terminator = !terminated ? 0 : raw.length >= 2 && raw[raw.length - 2] === 0x0d ? 2 : 1;
      const text = latin1Decode(raw.subarray(0, raw.length - terminator));
      const line: Line = { text, raw };
      const verdict = await hook!.call(session, line, io);
      // Before the line goes out, so that the other side's answer to it is never a line.
      if (verdict === "passthrough") detach();
      // Awaited so that `raw` (a view of a reused buffer) is written before the next read.
      if (verdict !== "consumed" && !controller.signal.aborted) await to.write(raw);
    };

    /** Keeps what is not handled yet for the core relay: the partial line, then `rest`. */
    const handBack = (rest: Uint8Array) => {
      if (pendingLength > 0) leftover.received.push(pending.slice(0, pendingLength));
      if (rest.length > 0) leftover.received.push(rest.slice());
      pendingLength = 0;
    };

    const consume = async (bytes: Uint8Array) => {
      if (!hook) {
        await to.write(bytes);
        return;
      }
      let start = 0;
      for (let i = 0; i < bytes.length && !controller.signal.aborted; i++) {
        if (detached) break;
        if (bytes[i] !== 0x0a) continue;
        const length = i + 1 - start;
        if (pendingLength + length > maxLineBytes) throw new LineTooLongError(side, maxLineBytes);
        if (pendingLength === 0) {
          await deliver(bytes.subarray(start, i + 1));
        } else {
          pending.set(bytes.subarray(start, i + 1), pendingLength);
          const whole = pending.subarray(0, pendingLength + length);
          pendingLength = 0;
          await deliver(whole);
        }
        start = i + 1;
      }
      if (controller.signal.aborted) return;
      if (detached) {
        handBack(bytes.subarray(start));
        return;
      }
      const rest = bytes.length - start;
      if (rest > 0) {
        if (pendingLength + rest > maxLineBytes) throw new LineTooLongError(side, maxLineBytes);
        pending.set(bytes.subarray(start), pendingLength);
        pendingLength += rest;
      }
    };

    try {
      let first = side === "server" ? options.serverPending : undefined;
      while (!controller.signal.aborted && !detached) {
        const reading: PendingRead = first ?? { buffer: chunk, read: from.read(chunk) };
        first = undefined;
        reading.read.catch(() => {}); // observed below, or by the hand-back stream
        let n: number | null | typeof DETACHED;
        try {
          n = await Promise.race([reading.read, detachRequested]);
        } catch (error) {
          if (controller.signal.aborted) return;
          throw error;
        }
        if (n === DETACHED) {
          handBack(new Uint8Array(0));
          leftover.pending = reading;
          return;
        }
        active = true;
        if (n === null) break;
        bytes[side] += n;
        await consume(reading.buffer.subarray(0, n));
      }
      if (controller.signal.aborted) return;
      if (detached) {
        handBack(new Uint8Array(0));
        return;
      }
      // A last line without a terminator goes to the hook like any line (its `raw` has no
      // terminator): relaying it unseen would let bytes past the hook at the end of a stream.
      if (pendingLength > 0) {
        const last = pending.slice(0, pendingLength);
        pendingLength = 0;
        if (hook) await deliver(last);
        else await to.write(last);
      }
      await session.onEnd?.call(session, side, io);
      await to.closeWrite().catch(() => {});
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof LineTooLongError) {
        try {
          await session.onLineTooLong?.call(session, side, io);
        } catch (hookError) {
          logger.warn("Translator hook failed: {error}", { id: options.id, error: hookError });
        }
        stop("line-too-long", error);
      } else {
        stop("error", error);
      }
    }
  };

  let handedBack = false;
  try {
    await Promise.all([pump("client"), pump("server")]);
    if (detached && !controller.signal.aborted) {
      // Lines and replies already queued go out before any byte the core relay copies.
      await Promise.all([toClient.drain(), toServer.drain()]);
      handedBack = !controller.signal.aborted;
    }
  } finally {
    clearInterval(idleTimer);
    options.signal.removeEventListener("abort", onOuterAbort);
    if (handedBack) end = "detached";
    if (!controller.signal.aborted) controller.abort();
    if (!handedBack) {
      closeQuietly(client);
      closeQuietly(server);
    }
    try {
      await session.close?.call(session);
    } catch (error) {
      logger.warn("Translator close failed: {error}", { id: options.id, error: errorText(error) });
    }
  }
  if (end === "error") {
    logger.info("Translator session ended: {error}", { id: options.id, error: errorText(failure) });
  }
  const unhandled = (side: Side) =>
    leftovers[side].received.reduce((total, chunk) => total + chunk.length, 0);
  const counts = {
    bytesUp: bytes.client - (handedBack ? unhandled("client") : 0),
    bytesDown: bytes.server - (handedBack ? unhandled("server") : 0),
  };
  if (handedBack) {
    const stream = (conn: Deno.Conn, side: Side) =>
      new HandBackStream(conn, leftovers[side].received, leftovers[side].pending);
    return {
      end,
      ...counts,
      handBack: { client: stream(client, "client"), server: stream(server, "server") },
    };
  }
  return failure === undefined ? { end, ...counts } : { end, error: failure, ...counts };
}
