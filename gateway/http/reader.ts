/**
 * A buffered reader for HTTP/1.1 framing: CRLF lines with a size limit, and bytes up to a
 * count, over a socket. Bytes read ahead (a pipelined next request) stay buffered for the next
 * read; nothing is ever buffered beyond one read's worth plus one line.
 *
 * @module
 */

import type { ByteSource } from "../../socks5/types.ts";
import { HttpError } from "./errors.ts";

const READ_SIZE = 16 * 1024;

/** Buffers a {@linkcode ByteSource}; see the module doc. */
export class HttpReader {
  readonly #source: ByteSource;
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;

  /** Wraps `source`; `prelude` are bytes already read from it (a sniffed first segment). */
  constructor(source: ByteSource, prelude: Uint8Array = new Uint8Array(0)) {
    this.#source = source;
    this.#buffer = new Uint8Array(Math.max(READ_SIZE, prelude.length));
    this.#buffer.set(prelude);
    this.#end = prelude.length;
  }

  /** Number of bytes read from the source but not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more from the source into the buffer; `false` at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      const grown = new Uint8Array(this.#buffer.length * 2);
      grown.set(this.#buffer.subarray(0, this.#end));
      this.#buffer = grown;
    }
    const n = await this.#source.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /**
   * Reads one line ending in CRLF and returns it without the CRLF (Latin-1 decoded), or `null`
   * when the stream ends before any byte of it.
   *
   * @throws {HttpError} `tooLong` (with `status`) past `limit` bytes, 400 on a bare CR or LF,
   *   or a stream that ends inside the line.
   */
  async readLine(limit: number, tooLong: number): Promise<string | null> {
    let scanned = 0;
    while (true) {
      const view = this.#buffer.subarray(this.#start + scanned, this.#end);
      const lf = view.indexOf(0x0a);
      if (lf >= 0) {
        const length = scanned + lf;
        if (length > limit + 1) throw new HttpError(tooLong, "line too long");
        const line = this.#buffer.subarray(this.#start, this.#start + length);
        if (length === 0 || line[length - 1] !== 0x0d) {
          throw new HttpError(400, "line not ended by CRLF");
        }
        const text = latin1(line.subarray(0, length - 1));
        this.#start += length + 1;
        if (text.includes("\r")) throw new HttpError(400, "bare CR in a line");
        return text;
      }
      scanned += view.length;
      if (scanned > limit + 1) throw new HttpError(tooLong, "line too long");
      if (!(await this.#fill())) {
        if (this.buffered === 0) return null;
        throw new HttpError(400, "stream ended inside a line");
      }
    }
  }

  /**
   * Returns up to `max` bytes (a view valid until the next read), reading once when nothing is
   * buffered; `null` at end of stream.
   */
  async readSome(max: number): Promise<Uint8Array | null> {
    if (this.buffered === 0 && !(await this.#fill())) return null;
    const n = Math.min(max, this.buffered);
    const out = this.#buffer.subarray(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** Reads at least one byte into the buffer without consuming it; `false` at end of stream. */
  async peek(): Promise<boolean> {
    return this.buffered > 0 || await this.#fill();
  }

  /** Removes and returns whatever is buffered (a copy). */
  takeBuffered(): Uint8Array {
    const out = this.#buffer.slice(this.#start, this.#end);
    this.#start = this.#end = 0;
    return out;
  }
}

/** Decodes bytes as Latin-1 (HTTP field octets), one char per byte. */
export function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}
