/**
 * The proxy's own responses: an error with a one-line body that says why, and the CONNECT
 * success line.
 *
 * @module
 */

import { serializeHead } from "./headers.ts";
import type { Field } from "./message.ts";

const REASONS: Readonly<Record<number, string>> = {
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  414: "URI Too Long",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** The realm of `Proxy-Authenticate`. */
export const REALM = "dualgate";

/**
 * A complete error response that closes the connection: `status`, and `why` (control
 * characters replaced, so that it stays one line) as a `text/plain` body.
 */
export function errorResponse(status: number, why: string): Uint8Array {
  // deno-lint-ignore no-control-regex
  const line = why.replace(/[\x00-\x1f\x7f]/g, " ");
  const body = new TextEncoder().encode(`${status} ${REASONS[status] ?? "Error"}: ${line}\n`);
  const fields: Field[] = [
    ["Content-Type", "text/plain; charset=utf-8"],
    ["Content-Length", String(body.length)],
    ["Connection", "close"],
  ];
  if (status === 407) fields.push(["Proxy-Authenticate", `Basic realm="${REALM}"`]);
  const head = serializeHead(`HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`, fields);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The answer to a CONNECT whose tunnel is open. */
export const CONNECT_ESTABLISHED: Uint8Array = serializeHead(
  "HTTP/1.1 200 Connection established",
  [],
);
