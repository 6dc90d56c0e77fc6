/**
 * The byte stream the gateway's core relay drives: a TCP connection (a `Deno.Conn` is one) or
 * anything shaped like one. Defined here, in the lowest layer, so that the relay and the
 * translator plugin API name the same interface.
 *
 * @module
 */

/** A two-way byte stream with half-close. */
export interface DuplexStream {
  /** Reads into the buffer; `null` at end of stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes some of the bytes; returns how many. */
  write(bytes: Uint8Array): Promise<number>;
  /** Shuts down the write side (sends FIN). */
  closeWrite(): Promise<void>;
  /** Closes both sides and releases the resource. */
  close(): void;
}

/**
 * Moves bytes from the front of `queue` (not empty) into `buffer`: as many as the first chunk
 * holds and `buffer` takes, dropping the chunk once it is all read. Returns how many.
 */
export function readQueued(queue: Uint8Array[], buffer: Uint8Array): number {
  const head = queue[0]!;
  const n = Math.min(head.length, buffer.length);
  buffer.set(head.subarray(0, n));
  if (n === head.length) queue.shift();
  else queue[0] = head.subarray(n);
  return n;
}
