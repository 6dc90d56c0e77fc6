/**
 * Drain: how a gateway stops. The listeners close first (no new client), live sessions get up
 * to the drain time to finish on their own, then the shutdown signal closes every relay and
 * whatever connection is left.
 *
 * @module
 */

import { closeQuietly } from "../net/io.ts";
import { logger } from "./observe/log.ts";

/** What {@linkcode drain} stops. */
export interface DrainTargets {
  /** The SOCKS listeners; closed first. */
  readonly listeners: Iterable<Deno.TcpListener>;
  /** The accept loops; they end when their listener closes. */
  readonly loops: Iterable<Promise<void>>;
  /** Sessions in progress (each removes itself when it ends). */
  readonly sessions: ReadonlySet<Promise<void>>;
  /** Client connections still open after the drain time are closed. */
  readonly connections: Iterable<Deno.TcpConn>;
  /** Ends every relay at once (the gateway's shutdown signal). */
  readonly abort: () => void;
}

const log = logger("gateway");

/** Closes the listeners, waits up to `drainMs` for the sessions, then closes the rest. */
export async function drain(targets: DrainTargets, drainMs: number): Promise<void> {
  for (const listener of targets.listeners) closeQuietly(listener);
  await Promise.all(targets.loops);
  const { sessions } = targets;
  if (sessions.size > 0) {
    log.info("draining {count} connections for up to {drainMs} ms", {
      count: sessions.size,
      drainMs,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...sessions]),
      new Promise((resolve) => timer = setTimeout(resolve, drainMs)),
    ]);
    clearTimeout(timer);
  }
  targets.abort();
  for (const conn of targets.connections) closeQuietly(conn);
  await Promise.all([...sessions]);
}
