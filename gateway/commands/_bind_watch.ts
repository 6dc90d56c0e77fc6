/**
 * Watches a client connection for its end while BIND waits for the peer, without losing bytes:
 * the connection is read from the start of the wait, whatever it sends is held for the relay,
 * and its end (FIN, reset, error) settles {@linkcode WatchedConn.gone} at once, so the wait and
 * its listener end with it. A Deno read cannot be cancelled, so this is how the wait learns that
 * the client left, even after the client sent something.
 *
 * @module
 */

import type { RelayConn } from "../relay/relay.ts";

/** Bytes the watch asks for at each read of the connection. */
const READ_SIZE = 4096;
/** Smallest buffer the held bytes start in. */
const MIN_HELD = 1024;

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
  readonly #watch: Promise<void>;
  /**
   * The held bytes, in one buffer allocated at the first byte and grown by doubling up to the
   * hold limit plus one read: a client sending bytes one at a time pins no more memory than one
   * sending them at once, and an idle wait pins none.
   */
  #held: Uint8Array | undefined;
  /** Where the bytes not yet given to {@linkcode WatchedConn.read} start in `#held`. */
  #heldStart = 0;
  /** Where the held bytes end in `#held`. */
  #heldEnd = 0;
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
    const scratch = new Uint8Array(READ_SIZE);
    while (this.#watching) {
      if (this.#heldEnd > this.#holdLimit) {
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
      this.#hold(scratch.subarray(0, n));
    }
  }

  /** Copies `bytes` after the held ones, growing the one buffer when they do not fit. */
  #hold(bytes: Uint8Array): void {
    const end = this.#heldEnd + bytes.length;
    let held = this.#held;
    if (held === undefined || end > held.length) {
      // At most the limit plus one read: the watch stops once past the limit.
      const size = Math.min(
        Math.max(end, 2 * (held?.length ?? 0), MIN_HELD),
        this.#holdLimit + READ_SIZE,
      );
      const grown = new Uint8Array(Math.max(size, end));
      if (held !== undefined) grown.set(held.subarray(this.#heldStart, this.#heldEnd));
      this.#heldEnd -= this.#heldStart;
      this.#heldStart = 0;
      this.#held = held = grown;
    }
    held.set(bytes, this.#heldEnd);
    this.#heldEnd += bytes.length;
  }

  /** Reads: stops the watch, then gives the held bytes, the end it saw, then the connection. */
  async read(buffer: Uint8Array): Promise<number | null> {
    this.#watching = false;
    // Held bytes first, at once; else the watch's read in flight (at most one) comes next.
    if (this.#heldStart === this.#heldEnd) await this.#watch;
    const held = this.#held;
    if (held !== undefined && this.#heldStart < this.#heldEnd) {
      const n = Math.min(this.#heldEnd - this.#heldStart, buffer.length);
      buffer.set(held.subarray(this.#heldStart, this.#heldStart + n));
      this.#heldStart += n;
      if (this.#heldStart === this.#heldEnd) {
        // All given: the buffer goes (a read of the watch still in flight starts a new one).
        this.#held = undefined;
        this.#heldStart = this.#heldEnd = 0;
      }
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
