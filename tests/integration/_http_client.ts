/**
 * A raw HTTP client for the HTTP front's tests: writes bytes exactly as given and reads
 * responses with the front's own parser.
 *
 * @module
 */

import { copyBody } from "../../gateway/http/body.ts";
import { type Field, readResponseHead, responseFraming } from "../../gateway/http/message.ts";
import { HttpReader } from "../../gateway/http/reader.ts";

/** A response read by {@linkcode readResponse}. */
export interface RawResponse {
  /** Status code. */
  readonly status: number;
  /** Fields. */
  readonly fields: readonly Field[];
  /** The body as text. */
  readonly body: string;
}

class TextSink {
  text = "";
  write(bytes: Uint8Array): Promise<number> {
    this.text += new TextDecoder().decode(bytes);
    return Promise.resolve(bytes.length);
  }
}

/** Reads one response to `method` from `reader`. */
export async function readResponse(reader: HttpReader, method = "GET"): Promise<RawResponse> {
  const head = await readResponseHead(reader);
  const sink = new TextSink();
  await copyBody({ framing: responseFraming(method, head), from: reader }, sink, {
    errorStatus: 502,
    dechunk: true,
  });
  return { status: head.status, fields: head.fields, body: sink.text };
}

/** A reader over `conn`. */
export function httpReaderOf(conn: Deno.Conn): HttpReader {
  return new HttpReader(conn);
}

/** The value of field `name` in `fields`, or `undefined`. */
export function field(fields: readonly Field[], name: string): string | undefined {
  return fields.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}
