/**
 * Replies that end a request: a failure reply and a close that lets it arrive (RFC 1928 §6: the
 * server closes "shortly after" a failure reply).
 *
 * @module
 */

import { closeQuietly, writeAll } from "../net/io.ts";
import { encodeReply, ZERO_TARGET } from "../socks5/codec.ts";
import type { ReplyCode } from "../socks5/types.ts";

const FAILURE_LINGER_MS = 1000;

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
  closeQuietly(conn);
}
