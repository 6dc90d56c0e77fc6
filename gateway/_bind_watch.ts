/**
 * Watches a client connection for its end while BIND waits for the peer, without losing bytes:
 * one read is started at once; the relay's first read later takes its result. A Deno read
 * cannot be cancelled, so this is how the wait learns that the client left.
 *
 * @module
 */

import type { RelayConn } from "./relay.ts";

/** A client connection with one read already in flight; usable as a {@linkcode RelayConn}. */
export class WatchedConn implements RelayConn {
  /** Resolves `true` when the client closed or failed before sending anything, else `false`. */
  readonly gone: Promise<boolean>;
  readonly #conn: Deno.TcpConn;
  readonly #scratch = new Uint8Array(4096);
  #pending: Promise<number | null> | null;
  #held: Uint8Array | null = null;
  #error: unknown;

  /** Starts watching `conn`. */
  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
    this.#pending = conn.read(this.#scratch).catch((error) => {
      this.#error = error;
      return null;
    });
    this.gone = this.#pending.then((n) => n === null);
  }

  /** Reads: first whatever the watching read got, then from the connection. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#pending !== null) {
      const n = await this.#pending;
      this.#pending = null;
      if (n === null) {
        if (this.#error !== undefined) throw this.#error;
        return null;
      }
      this.#held = this.#scratch.subarray(0, n);
    }
    const held = this.#held;
    if (held !== null) {
      const n = Math.min(held.length, buffer.length);
      buffer.set(held.subarray(0, n));
      this.#held = n === held.length ? null : held.subarray(n);
      return n;
    }
    return this.#conn.read(buffer);
  }

  /** Writes to the connection. */
  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  /** Half-closes the connection. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** Closes the connection (the watching read then ends). */
  close(): void {
    this.#conn.close();
  }
}
