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
  readonly serverPending?: { readonly buffer: Uint8Array; readonly read: Promise<number | null> };
  /** A session id for logs. @default "" */
  readonly id?: string;
}

/** Why a line session ended. */
export type LineSessionEnd = "eof" | "closed" | "aborted" | "line-too-long" | "error";

/** The outcome of {@linkcode runLineSession}; it never rejects. */
export interface LineSessionResult {
  /** Why it ended. */
  readonly end: LineSessionEnd;
  /** The error, for `"error"`. */
  readonly error?: unknown;
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
}

class LineTooLongError extends Error {
  readonly side: Side;
  constructor(side: Side, max: number) {
    super(`Cannot read line: the ${side} sent more than ${max} bytes without a line end`);
    this.side = side;
  }
}

/**
 * Runs one translated session until both sides have ended, the session closes itself, or
 * `options.signal` aborts. Takes ownership of both connections: they are closed on return.
 * Never rejects; hook errors end the session and are logged.
 *
 * @example
 * ```ts ignore
 * const session = translator.startSession(ctx, broker);
 * const result = await runLineSession(session, clientConn, serverConn, { signal });
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

  const io: LineIo = {
    sendToServer: (text) => toServer.write(latin1Encode(text + "\r\n")),
    sendToClient: (text) => toClient.write(latin1Encode(text + "\r\n")),
    close: () => stop("closed"),
    signal: controller.signal,
  };

  const pump = async (side: Side): Promise<void> => {
    const from = side === "client" ? client : server;
    const to = side === "client" ? toServer : toClient;
    const hook = side === "client" ? session.onClientLine : session.onServerLine;
    const chunk = new Uint8Array(CHUNK_BYTES);
    const pending = new Uint8Array(maxLineBytes);
    let pendingLength = 0;

    const deliver = async (raw: Uint8Array) => {
      const terminated = raw.length > 0 && raw[raw.length - 1] === 0x0a;
      const terminator = !terminated ? 0 : raw.length >= 2 && raw[raw.length - 2] === 0x0d ? 2 : 1;
      const text = latin1Decode(raw.subarray(0, raw.length - terminator));
      const line: Line = { text, raw };
      const verdict = await hook!.call(session, line, io);
      // Awaited so that `raw` (a view of a reused buffer) is written before the next read.
      if (verdict === "forward" && !controller.signal.aborted) await to.write(raw);
    };

    const consume = async (bytes: Uint8Array) => {
      if (!hook) {
        await to.write(bytes);
        return;
      }
      let start = 0;
      for (let i = 0; i < bytes.length && !controller.signal.aborted; i++) {
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
      const rest = bytes.length - start;
      if (rest > 0 && !controller.signal.aborted) {
        if (pendingLength + rest > maxLineBytes) throw new LineTooLongError(side, maxLineBytes);
        pending.set(bytes.subarray(start), pendingLength);
        pendingLength += rest;
      }
    };

    try {
      let first = side === "server" ? options.serverPending : undefined;
      while (!controller.signal.aborted) {
        let n: number | null;
        try {
          n = await (first ? first.read : from.read(chunk));
        } catch (error) {
          if (controller.signal.aborted) return;
          throw error;
        }
        if (n === null) break;
        await consume((first ? first.buffer : chunk).subarray(0, n));
        first = undefined;
      }
      if (controller.signal.aborted) return;
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

  try {
    await Promise.all([pump("client"), pump("server")]);
  } finally {
    options.signal.removeEventListener("abort", onOuterAbort);
    if (!controller.signal.aborted) controller.abort();
    closeQuietly(client);
    closeQuietly(server);
    try {
      await session.close?.call(session);
    } catch (error) {
      logger.warn("Translator close failed: {error}", { id: options.id, error: errorText(error) });
    }
  }
  if (end === "error") {
    logger.info("Translator session ended: {error}", { id: options.id, error: errorText(failure) });
  }
  return failure === undefined ? { end } : { end, error: failure };
}
