/**
 * HTTP/1.1 message heads (RFC 9112) as a proxy must read them: strict enough that no two
 * parsers can disagree on where a message ends (the request smuggling defences), and bounded.
 *
 * Refused with 400: a line not ended by CRLF or holding a bare CR, obs-fold (a field line
 * starting with whitespace), whitespace between a field name and its colon, a name that is not
 * a token, control characters in a value, a request with both `Content-Length` and
 * `Transfer-Encoding`, a `Content-Length` that is not one decimal number, a request
 * `Transfer-Encoding` other than `chunked`. Over the limits: 414 (request line), 431 (fields).
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import type { HttpReader } from "./reader.ts";

/** Longest request or status line, in bytes. */
export const MAX_START_LINE = 8 * 1024;
/** Longest field line, in bytes. */
export const MAX_FIELD_LINE = 8 * 1024;
/** Largest header section (all field lines), in bytes. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Most field lines in one header section. */
export const MAX_FIELDS = 100;

/** One field line: the name as sent and the value without surrounding whitespace. */
export type Field = readonly [name: string, value: string];

/** A request head. */
export interface RequestHead {
  /** The method token (`GET`, `CONNECT`, ...). */
  readonly method: string;
  /** The request target as sent. */
  readonly target: string;
  /** The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** The field lines in order. */
  readonly fields: readonly Field[];
}

/** A response head. */
export interface ResponseHead {
  /** The minor version of the response. */
  readonly minor: 0 | 1;
  /** The status code. */
  readonly status: number;
  /** The reason phrase. */
  readonly reason: string;
  /** The field lines in order. */
  readonly fields: readonly Field[];
}

/** How a message body is delimited. */
export type BodyFraming =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, obs-text, SP and HTAB (no CTLs, no DEL).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Reads a header section after its start line (through the empty line). */
async function readFields(reader: HttpReader): Promise<Field[]> {
  const fields: Field[] = [];
  let total = 0;
  while (true) {
    const line = await reader.readLine(MAX_FIELD_LINE, 431);
    if (line === null) throw new HttpError(400, "stream ended inside the header section");
    if (line === "") return fields;
    total += line.length + 2;
    if (total > MAX_HEADER_BYTES) throw new HttpError(431, "header section too large");
    if (fields.length >= MAX_FIELDS) throw new HttpError(431, "too many header fields");
    fields.push(parseFieldLine(line));
  }
}

/** Parses one field line (`name: value`); see the module doc for what is refused. */
export function parseFieldLine(line: string): Field {
  if (line[0] === " " || line[0] === "\t") {
    throw new HttpError(400, "obsolete line folding in a header field");
  }
  const colon = line.indexOf(":");
  if (colon <= 0) throw new HttpError(400, "header field without a name and colon");
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) throw new HttpError(400, "invalid header field name");
  const value = line.slice(colon + 1).replace(/^[\t ]+|[\t ]+$/g, "");
  if (!FIELD_VALUE.test(value)) throw new HttpError(400, `invalid characters in ${name}`);
  return [name, value];
}

function parseVersion(text: string): 0 | 1 {
  if (text === "HTTP/1.1") return 1;
  if (text === "HTTP/1.0") return 0;
  throw new HttpError(text.startsWith("HTTP/") ? 505 : 400, "not an HTTP/1.x message");
}

/**
 * Reads a request head, or returns `null` when the stream ends cleanly before one (the client
 * is done with the connection). Empty lines before the request line are skipped (RFC 9112 §2.2).
 */
export async function readRequestHead(reader: HttpReader): Promise<RequestHead | null> {
  let line: string | null;
  let skipped = 0;
  do {
    line = await reader.readLine(MAX_START_LINE, 414);
    if (line === null) return null;
  } while (line === "" && ++skipped < 4);
  const parts = line.split(" ");
  if (parts.length !== 3 || !TOKEN.test(parts[0]!) || parts[1] === "") {
    throw new HttpError(400, "malformed request line");
  }
  const [method, target, version] = parts as [string, string, string];
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x20\x7f-\xff]/.test(target)) throw new HttpError(400, "invalid request target");
  const minor = parseVersion(version);
  return { method, target, minor, fields: await readFields(reader) };
}

/** Reads a response head; a stream that ends first is an error (the server gave no response). */
export async function readResponseHead(reader: HttpReader): Promise<ResponseHead> {
  const line = await reader.readLine(MAX_START_LINE, 502);
  if (line === null) throw new HttpError(502, "the server closed without a response");
  const match = /^(HTTP\/1\.[01]) ([1-9][0-9]{2})(?: (.*))?$/.exec(line);
  if (match === null) throw new HttpError(502, "malformed status line from the server");
  const status = Number(match[2]);
  let fields: Field[];
  try {
    fields = await readFields(reader);
  } catch (error) {
    if (error instanceof HttpError) throw new HttpError(502, `server response: ${error.message}`);
    throw error;
  }
  return { minor: parseVersion(match[1]!), status, reason: match[3] ?? "", fields };
}

/** All values of field `name` (case-insensitive), in order. */
export function fieldValues(fields: readonly Field[], name: string): string[] {
  const lower = name.toLowerCase();
  return fields.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The comma-separated list elements of every `name` field, lower-cased, empty ones dropped. */
export function fieldTokens(fields: readonly Field[], name: string): string[] {
  return fieldValues(fields, name).flatMap((v) => v.split(",")).map((t) => t.trim().toLowerCase())
    .filter((t) => t !== "");
}

/** The one `Content-Length` of a header section, `undefined` when absent; 400 when invalid. */
function contentLength(fields: readonly Field[], status: number): number | undefined {
  const values = fieldValues(fields, "content-length").flatMap((v) => v.split(","))
    .map((v) => v.trim());
  if (values.length === 0) return undefined;
  if (!values.every((v) => /^[0-9]{1,15}$/.test(v)) || new Set(values).size !== 1) {
    throw new HttpError(status, "invalid Content-Length");
  }
  return Number(values[0]);
}

/**
 * The framing of a request body (RFC 9112 §6.3), refusing the ambiguous ones with 400: both
 * `Content-Length` and `Transfer-Encoding`, an invalid `Content-Length`, or a
 * `Transfer-Encoding` that is not exactly `chunked`.
 */
export function requestFraming(head: RequestHead): BodyFraming {
  const codings = fieldTokens(head.fields, "transfer-encoding");
  const hasTe = fieldValues(head.fields, "transfer-encoding").length > 0;
  const length = contentLength(head.fields, 400);
  if (hasTe && length !== undefined) {
    throw new HttpError(400, "both Content-Length and Transfer-Encoding");
  }
  if (hasTe) {
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new HttpError(400, "unsupported Transfer-Encoding (only chunked)");
    }
    if (head.minor === 0) throw new HttpError(400, "Transfer-Encoding in an HTTP/1.0 request");
    return { kind: "chunked" };
  }
  if (length === undefined || length === 0) return { kind: "none" };
  return { kind: "length", length };
}

/**
 * The framing of a response body to `method` (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304;
 * chunked when `chunked` is the final coding (a `Content-Length` beside it is ignored); read to
 * the close for other codings or without a length. An invalid `Content-Length` is a 502.
 */
export function responseFraming(method: string, head: ResponseHead): BodyFraming {
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) {
    return { kind: "none" };
  }
  if (fieldValues(head.fields, "transfer-encoding").length > 0) {
    const codings = fieldTokens(head.fields, "transfer-encoding");
    return codings.at(-1) === "chunked" ? { kind: "chunked" } : { kind: "close" };
  }
  const length = contentLength(head.fields, 502);
  if (length === undefined) return { kind: "close" };
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}
