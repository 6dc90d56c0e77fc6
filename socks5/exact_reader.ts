/**
 * Exact-length reads over a byte stream: a message split over many segments, or several
 * messages in one segment, parse the same.
 *
 * @module
 */

import { TruncatedMessageError } from "./errors.ts";
import type { ByteSource } from "./types.ts";

const EMPTY = new Uint8Array(0);

/**
 * Buffers a {@linkcode ByteSource} and hands out exactly the bytes asked for. Bytes read past
 * the last message stay buffered: {@linkcode ExactReader.takeBuffered} returns them so that a
 * relay can forward data a client pipelined after its request.
 */
export class ExactReader {
  #source: ByteSource;
  #buffer: Uint8Array;
  readonly #capacity: number;
  #start = 0;
  #end = 0;

  /** Wraps `source`; `capacity` bounds how much is read ahead (at least one maximal message). */
  constructor(source: ByteSource, capacity = 1024) {
    this.#source = source;
    this.#capacity = Math.max(capacity, 600);
    this.#buffer = new Uint8Array(this.#capacity);
  }

  /**
   * A reader whose first bytes are `prelude` (already read from `source`, e.g. a first segment
   * sniffed to choose the protocol), then `source`. All of `prelude` is held at once, however
   * long, so none of it is lost to a later {@linkcode ExactReader.takeBuffered}.
   */
  static withPrelude(source: ByteSource, prelude: Uint8Array, capacity = 1024): ExactReader {
    const reader = new ExactReader(source, Math.max(capacity, prelude.length));
    reader.#buffer.set(prelude);
    reader.#end = prelude.length;
    return reader;
  }

  /** Number of bytes read from the source but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Returns exactly `length` bytes (a copy, safe to keep).
   *
   * @throws {TruncatedMessageError} when the stream ends first.
   */
  async readExact(length: number, what = "message"): Promise<Uint8Array> {
    if (length > this.#capacity) throw new RangeError(`Cannot read ${length} bytes at once`);
    if (this.#buffer.length === 0) this.#buffer = new Uint8Array(this.#capacity);
    while (this.#end - this.#start < length) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      const n = await this.#source.read(this.#buffer.subarray(this.#end));
      if (n === null) throw new TruncatedMessageError(what);
      this.#end += n;
    }
    const out = this.#buffer.slice(this.#start, this.#start + length);
    this.#start += length;
    return out;
  }

  /** Reads one byte. */
  async readByte(what = "message"): Promise<number> {
    return (await this.readExact(1, what))[0]!;
  }

  /**
   * Removes and returns whatever is buffered beyond the messages consumed so far, and lets the
   * read-ahead buffer go (a relay holds many readers that are done; a later read allocates anew).
   */
  takeBuffered(): Uint8Array {
    const out = this.#buffer.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    this.#buffer = EMPTY;
    return out;
  }
}
