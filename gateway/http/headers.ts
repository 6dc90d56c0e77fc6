/**
 * Header rewriting of a forwarding proxy (RFC 9110 §7.6): hop-by-hop fields removed (the
 * standard ones, `Proxy-Connection`, and every field the `Connection` header names), the
 * proxy's `Via` entry appended, and the message serialised again.
 *
 * @module
 */

import { type Field, fieldTokens } from "./message.ts";

/** Fields that never travel past one hop. */
const HOP_BY_HOP = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
]);

/** The pseudonym this proxy gives itself in `Via`. */
export const VIA_NAME = "dualgate";

/**
 * `fields` without the hop-by-hop ones (those of {@linkcode HOP_BY_HOP} and those `Connection`
 * lists), and without `Content-Length` when `dropLength` (the framing is redone).
 */
export function endToEndFields(fields: readonly Field[], dropLength = false): Field[] {
  const listed = new Set(fieldTokens(fields, "connection"));
  return fields.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) && !listed.has(lower) &&
      !(dropLength && lower === "content-length");
  });
}

/** True when the sender of `fields` at HTTP/1.`minor` wants the connection kept open. */
export function wantsKeepAlive(fields: readonly Field[], minor: 0 | 1): boolean {
  const connection = fieldTokens(fields, "connection");
  if (connection.includes("close")) return false;
  return minor === 1 || connection.includes("keep-alive");
}

/** `fields` with this proxy's `Via` entry added for a message received as HTTP/1.`minor`. */
export function withVia(fields: readonly Field[], minor: 0 | 1): Field[] {
  return [...fields, ["Via", `1.${minor} ${VIA_NAME}`]];
}

/** Serialises a head: the start line, the fields, the empty line. */
export function serializeHead(startLine: string, fields: readonly Field[]): Uint8Array {
  let text = `${startLine}\r\n`;
  for (const [name, value] of fields) text += `${name}: ${value}\r\n`;
  text += "\r\n";
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
