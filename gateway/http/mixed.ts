/**
 * A `protocol: mixed` listener: one port for SOCKS5 and HTTP proxy clients, told apart by the
 * first byte (`0x05` is a SOCKS5 greeting; an HTTP request line starts with a letter). The
 * first segment is read inside the handshake timeout and handed to the chosen session.
 *
 * @module
 */

import { closeQuietly } from "../../net/io.ts";
import { runSession } from "../session.ts";
import type { SessionServices } from "../session_types.ts";
import { runHttpSession } from "./front.ts";

/** SOCKS versions 4 and 5 start with their version byte; anything else is taken for HTTP. */
export function looksLikeSocks(firstByte: number): boolean {
  return firstByte === 0x05 || firstByte === 0x04;
}

/** Runs one client of a mixed listener; never throws. */
export async function runMixedSession(
  conn: Deno.TcpConn,
  services: SessionServices,
): Promise<void> {
  const first = new Uint8Array(4096);
  let n: number | null = null;
  const timer = setTimeout(() => closeQuietly(conn), services.config.timeouts.handshakeMs);
  try {
    n = await conn.read(first);
  } catch {
    /* closed by the timer, or reset */
  } finally {
    clearTimeout(timer);
  }
  if (n === null || n === 0) {
    closeQuietly(conn);
    return;
  }
  const prelude = first.slice(0, n);
  if (looksLikeSocks(prelude[0]!)) await runSession(conn, services, { prelude });
  else await runHttpSession(conn, services, { prelude });
}
