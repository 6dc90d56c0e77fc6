/**
 * A connection handed back from the line loop to the gateway's core relay: its reads return
 * the bytes the loop had already received (and a read it had in flight) first, in order, then
 * the connection's own. Once those are delivered each call is one check and the connection's.
 *
 * @module
 */

import { readQueued } from "../net/stream.ts";
import type { RelayStream } from "./types.ts";

/** A read started on a connection and not yet consumed: its buffer and its result. */
export interface PendingRead {
  /** The buffer the read fills. */
  readonly buffer: Uint8Array;
  /** The read's result, as from `conn.read(buffer)`. */
  readonly read: Promise<number | null>;
}

/** A {@linkcode RelayStream} over a connection, with bytes already received delivered first. */
export class HandBackStream implements RelayStream {
  readonly #conn: RelayStream;
  readonly #queue: Uint8Array[];
  #pending: PendingRead | undefined;

  /** Wraps `conn`; `received` (then `pending`'s bytes) come before anything it reads. */
  constructor(conn: RelayStream, received: readonly Uint8Array[], pending?: PendingRead) {
    this.#conn = conn;
    this.#queue = received.filter((bytes) => bytes.length > 0);
    this.#pending = pending;
  }

  /** Reads the bytes received before the hand-back first, then the connection. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#queue.length === 0 && this.#pending) {
      const pending = this.#pending;
      this.#pending = undefined;
      const n = await pending.read;
      if (n === null) return null;
      this.#queue.push(pending.buffer.subarray(0, n));
    }
    if (this.#queue.length === 0) return this.#conn.read(buffer);
    return readQueued(this.#queue, buffer);
  }

  /** Writes to the connection. */
  write(bytes: Uint8Array): Promise<number> {
    return this.#conn.write(bytes);
  }

  /** Half-closes the connection. */
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  /** Closes the connection. */
  close(): void {
    this.#conn.close();
  }
}
