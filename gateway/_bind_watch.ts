/**
 * Watches a client connection for its end while BIND waits for the peer, without losing bytes:
 * the connection is read from the start of the wait, whatever it sends is held for the relay,
 * and its end (FIN, reset, error) settles {@linkcode WatchedConn.gone} at once, so the wait and
 * its listener end with it. A Deno read cannot be cancelled, so this is how the wait learns that
 * the client left, even after the client sent something.
 *
 * @module
 */

import type { RelayConn } from "./relay.ts";

/** Options of {@linkcode WatchedConn}. */
export interface WatchedConnOptions {
  /**
   * Bytes the client may send while watched. Past this the watch stops and settles
   * {@linkcode WatchedConn.gone} with `true` and {@linkcode WatchedConn.overflowed} set: the
   * wait must end then, as a watch that stopped reading could no longer notice the client's
   * end. @default 16384
   */
  readonly holdLimit?: number;
}

/** A client connection read from the start; usable as a {@linkcode RelayConn}. */
export class WatchedConn implements RelayConn {
  /**
   * Resolves `true` as soon as the client's stream ends or fails while watched (or the
   * connection is closed), or the client sends more than the hold limit
   * ({@linkcode WatchedConn.overflowed}); `false` when the first {@linkcode WatchedConn.read}
   * stops the watch first.
   */
  readonly gone: Promise<boolean>;
  readonly #conn: Deno.TcpConn;
  readonly #holdLimit: number;
  readonly #held: Uint8Array[] = [];
  readonly #watch: Promise<void>;
  #heldBytes = 0;
  #watching = true;
  #ended = false;
  #overflowed = false;
  #error: unknown;

  /** Starts watching `conn`. */
  constructor(conn: Deno.TcpConn, options: WatchedConnOptions = {}) {
    this.#conn = conn;
    this.#holdLimit = options.holdLimit ?? 16384;
    this.#watch = this.#run();
    this.gone = this.#watch.then(() => this.#ended || this.#overflowed);
  }

  /** True when the client sent more than the hold limit while watched (the watch then ended). */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  async #run(): Promise<void> {
    const scratch = new Uint8Array(4096);
    while (this.#watching) {
      if (this.#heldBytes > this.#holdLimit) {
        this.#overflowed = true;
        return;
      }
      let n: number | null;
      try {
        n = await this.#conn.read(scratch);
      } catch (error) {
        this.#error = error;
        this.#ended = true;
        return;
      }
      if (n === null) {
        this.#ended = true;
        return;
      }
      this.#held.push(scratch.slice(0, n));
      this.#heldBytes += n;
    }
  }

  /** Reads: stops the watch, then gives the held bytes, the end it saw, then the connection. */
  async read(buffer: Uint8Array): Promise<number | null> {
    this.#watching = false;
    // Held bytes first, at once; else the watch's read in flight (at most one) comes next.
    if (this.#held.length === 0) await this.#watch;
    const first = this.#held[0];
    if (first !== undefined) {
      const n = Math.min(first.length, buffer.length);
      buffer.set(first.subarray(0, n));
      if (n === first.length) this.#held.shift();
      else this.#held[0] = first.subarray(n);
      return n;
    }
    if (this.#ended) {
      if (this.#error !== undefined) {
        const error = this.#error;
        this.#error = undefined;
        throw error;
      }
      return null;
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
    this.#watching = false;
    this.#conn.close();
  }
}
