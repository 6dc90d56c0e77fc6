/**
 * Test helpers of the HTTP front: a byte source fed in given pieces, and a collecting sink.
 *
 * @module
 */

import type { ByteSource } from "../../socks5/types.ts";
import { HttpReader } from "./reader.ts";

const encoder = new TextEncoder();

/** A reader over `pieces` (strings or bytes), each returned by one read. */
export function readerOf(...pieces: (string | Uint8Array)[]): HttpReader {
  const queue = pieces.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  const source: ByteSource = {
    read(buffer) {
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      const n = Math.min(buffer.length, next.length);
      buffer.set(next.subarray(0, n));
      if (n < next.length) queue.unshift(next.subarray(n));
      return Promise.resolve(n);
    },
  };
  return new HttpReader(source);
}

/** A sink that keeps what is written, and counts the writes. */
export class CollectingSink {
  /** Each write's bytes. */
  readonly writes: Uint8Array[] = [];

  /** Keeps a copy of `bytes`. */
  write(bytes: Uint8Array): Promise<number> {
    this.writes.push(bytes.slice());
    return Promise.resolve(bytes.length);
  }

  /** Everything written, as text. */
  get text(): string {
    return this.writes.map((w) => new TextDecoder().decode(w)).join("");
  }
}
