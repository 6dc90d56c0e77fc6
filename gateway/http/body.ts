/**
 * Streams a message body from a reader to a writer, piece by piece as it arrives (never the
 * whole body): a `Content-Length` body, a chunked one (checked and re-encoded, or decoded for
 * an HTTP/1.0 recipient), or everything up to the sender's close.
 *
 * A bad chunk size (not hex, too long, whitespace, no CRLF) ends the copy with an
 * {@linkcode HttpError}: a proxy that forwarded it as is would let the next hop read the
 * bytes differently (request smuggling).
 *
 * @module
 */

import { writeAll } from "../../net/io.ts";
import { HttpError } from "./errors.ts";
import { type BodyFraming, MAX_FIELD_LINE, MAX_HEADER_BYTES, parseFieldLine } from "./message.ts";
import type { HttpReader } from "./reader.ts";

const PIECE = 64 * 1024;
/** Chunk sizes beyond this many hex digits are refused (2^52 bytes is plenty). */
const MAX_SIZE_DIGITS = 13;
const encoder = new TextEncoder();

/** Where a body goes. */
export interface BodySink {
  /** Writes some of the bytes; returns how many. */
  write(bytes: Uint8Array): Promise<number>;
}

/** Options of {@linkcode copyBody}. */
export interface CopyBodyOptions {
  /** Writes a chunked body without its chunk framing (to an HTTP/1.0 recipient). */
  readonly dechunk?: boolean;
  /** The status of the error a malformed body raises (400 from a client, 502 from a server). */
  readonly errorStatus?: number;
}

/** A body to copy: how it is framed, and the reader it comes from. */
export interface FramedBody {
  /** How the body is delimited. */
  readonly framing: BodyFraming;
  /** Where it is read. */
  readonly from: HttpReader;
}

/** Copies `body` to `to`; returns the body bytes copied. */
export async function copyBody(
  body: FramedBody,
  to: BodySink,
  options: CopyBodyOptions = {},
): Promise<number> {
  const { framing, from } = body;
  const status = options.errorStatus ?? 400;
  switch (framing.kind) {
    case "none":
      return 0;
    case "length":
      return await copyExactly(framing.length, from, to, status);
    case "close": {
      let total = 0;
      while (true) {
        const piece = await from.readSome(PIECE);
        if (piece === null) return total;
        await writeAll(to, piece);
        total += piece.length;
      }
    }
    case "chunked":
      return await copyChunked(from, to, options.dechunk ?? false, status);
  }
}

async function copyExactly(
  length: number,
  from: HttpReader,
  to: BodySink,
  status: number,
): Promise<number> {
  let left = length;
  while (left > 0) {
    const piece = await from.readSome(Math.min(left, PIECE));
    if (piece === null) throw new HttpError(status, `body ended ${left} bytes early`);
    await writeAll(to, piece);
    left -= piece.length;
  }
  return length;
}

/** Parses a chunk-size line: hex digits, then optionally `;` extensions (dropped). */
export function parseChunkSize(line: string, status = 400): number {
  const match = /^([0-9A-Fa-f]+)(;.*)?$/.exec(line);
  if (match === null || match[1]!.length > MAX_SIZE_DIGITS) {
    throw new HttpError(status, "invalid chunk size");
  }
  // deno-lint-ignore no-control-regex
  if (match[2] !== undefined && /[\x00-\x08\x0a-\x1f\x7f]/.test(match[2])) {
    throw new HttpError(status, "invalid chunk extension");
  }
  return parseInt(match[1]!, 16);
}

async function copyChunked(
  from: HttpReader,
  to: BodySink,
  dechunk: boolean,
  status: number,
): Promise<number> {
  let total = 0;
  while (true) {
    const line = await from.readLine(MAX_FIELD_LINE, status).catch((error) => {
      throw error instanceof HttpError
        ? new HttpError(status, `chunked body: ${error.message}`)
        : error;
    });
    if (line === null) throw new HttpError(status, "chunked body ended early");
    const size = parseChunkSize(line, status);
    if (size === 0) break;
    if (!dechunk) await writeAll(to, encoder.encode(`${size.toString(16)}\r\n`));
    await copyExactly(size, from, to, status);
    const end = await from.readLine(0, status).catch(() => {
      throw new HttpError(status, "chunk data not followed by CRLF");
    });
    if (end !== "") throw new HttpError(status, "chunk data not followed by CRLF");
    if (!dechunk) await writeAll(to, encoder.encode("\r\n"));
    total += size;
  }
  // Trailer section: checked like header fields, passed on when re-encoding.
  let trailer = "";
  let trailerBytes = 0;
  while (true) {
    const line = await from.readLine(MAX_FIELD_LINE, status);
    if (line === null) throw new HttpError(status, "chunked body ended in its trailer");
    if (line === "") break;
    trailerBytes += line.length + 2;
    if (trailerBytes > MAX_HEADER_BYTES) throw new HttpError(status, "trailer section too large");
    try {
      parseFieldLine(line);
    } catch (error) {
      throw error instanceof HttpError ? new HttpError(status, `trailer: ${error.message}`) : error;
    }
    trailer += `${line}\r\n`;
  }
  if (!dechunk) await writeAll(to, encoder.encode(`0\r\n${trailer}\r\n`));
  return total;
}
