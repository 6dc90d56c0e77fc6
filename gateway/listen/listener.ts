/**
 * One `Deno.listen` per configured address. The client's family is read from the accepted
 * connection (IPv4-mapped IPv6 unwrapped), not from which socket took it.
 *
 * Accept errors (for instance running out of file descriptors) never end the loop: it backs off
 * and tries again.
 *
 * @module
 */

import { formatIp, type IpEndpoint } from "../../net/address.ts";

/** Options of {@linkcode acceptLoop}. */
export interface AcceptLoopOptions {
  /** Called for every accepted connection; must not throw. */
  onConnection: (conn: Deno.TcpConn) => void;
  /** Called when accept fails and the loop backs off. */
  onAcceptError?: (error: unknown, backoffMs: number) => void;
}

/** Options of {@linkcode listenOn}. */
export interface ListenOnOptions {
  /**
   * Sets SO_REUSEPORT, so that several isolates (workers) can listen on the same address and
   * the kernel spreads connections among them. @default false
   */
  reusePort?: boolean;
}

/** Opens a TCP listener on `endpoint`. */
export function listenOn(endpoint: IpEndpoint, options: ListenOnOptions = {}): Deno.TcpListener {
  return Deno.listen({
    hostname: formatIp(endpoint.address),
    port: endpoint.port,
    transport: "tcp",
    ...(options.reusePort && { reusePort: true }),
  });
}

const MAX_BACKOFF_MS = 1000;

/** Accepts until the listener is closed. */
export async function acceptLoop(
  listener: Deno.TcpListener,
  options: AcceptLoopOptions,
): Promise<void> {
  let backoffMs = 0;
  while (true) {
    let conn: Deno.TcpConn;
    try {
      conn = await listener.accept();
      backoffMs = 0;
    } catch (error) {
      if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
        return; // the listener was closed
      }
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs === 0 ? 10 : backoffMs * 2);
      options.onAcceptError?.(error, backoffMs);
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      continue;
    }
    options.onConnection(conn);
  }
}
