/**
 * FTP control-line grammar for address-carrying commands and replies: RFC 959 PORT/227,
 * RFC 1639 LPRT/LPSV/228, RFC 2428 EPRT/EPSV/229/522. Parsers are tolerant where real servers
 * are sloppy (RFC 1123 §4.1.2.6) and strict about numbers; formatters emit the RFC forms.
 *
 * @module
 */

import { formatIp, type IpEndpoint, parseIpv4, parseIpv6, unmapIpv4 } from "../../net/address.ts";

/** A client command: upper-case verb and the argument after one space (may be empty). */
export interface FtpCommand {
  /** Upper-case verb (`"EPSV"`). */
  readonly verb: string;
  /** The argument, without the separating space; empty when none. */
  readonly argument: string;
  /** The command in its one normal form: the upper-case verb, then a space and the argument. */
  readonly text: string;
}

/** A parsed client command, or why it is refused (the text of a 500 reply). */
export type CommandParse =
  | { readonly ok: true; readonly command: FtpCommand }
  | { readonly ok: false; readonly reason: string };

/** RFC 959 verbs are 3 or 4 letters; a few extensions are longer (`XSHA256`). */
const VERB = /^[A-Za-z][A-Za-z0-9]{2,7}$/;
/** C0 controls and DEL: a bare CR, a NUL or a tab could end or split a line for some server. */
// deno-lint-ignore no-control-regex -- control bytes are what this looks for
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Parses a command line (without CRLF) into one normal form, or refuses it. Telnet IAC
 * sequences and stray bytes ≥ 0xF0 before the verb are dropped: an ABOR "Synch" arrives that
 * way through Deno, which has no urgent data; so are CRs at the end (ftplib's urgent `abort()`
 * loses its LF). Refused: an empty line, anything before the verb (a space, a tab), a verb that
 * is not 3 to 8 letters or digits, anything but one space after it, and control bytes anywhere
 * (a bare CR or a NUL inside the line). A server may read such a line in a way the translator
 * did not (` PORT …` as PORT, `NOOP\rPORT …` as two commands), so it is never forwarded.
 */
export function parseCommand(line: string): CommandParse {
  let start = 0;
  while (start < line.length && line.charCodeAt(start) >= 0xf0) start++;
  let end = line.length;
  while (end > start && line[end - 1] === "\r") end--;
  const text = line.slice(start, end);
  if (text === "") return { ok: false, reason: "Empty command" };
  if (CONTROL.test(text)) return { ok: false, reason: "Control character in command" };
  const space = text.indexOf(" ");
  const verb = space < 0 ? text : text.slice(0, space);
  if (!VERB.test(verb)) return { ok: false, reason: "Syntax error, command unrecognized" };
  const argument = space < 0 ? "" : text.slice(space + 1);
  const upper = verb.toUpperCase();
  return {
    ok: true,
    command: { verb: upper, argument, text: space < 0 ? upper : `${upper} ${argument}` },
  };
}

/**
 * A server line in the one form passed to the client: control bytes inside it (a bare CR, a
 * NUL) become spaces, so that no client splits it into a reply the translator did not see.
 */
export function sanitizeReplyLine(line: string): string {
  // deno-lint-ignore no-control-regex -- control bytes are what this replaces (a tab stays)
  return line.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, " ");
}

/** A reply line: code and whether more lines follow (`xyz-`). */
export interface ReplyLine {
  /** The three-digit code. */
  readonly code: number;
  /** True for `xyz-text`, the first line of a multi-line reply. */
  readonly continues: boolean;
  /** The text after the code and separator. */
  readonly text: string;
}

/** Parses a line that starts a reply (`xyz text`, `xyz-text`, or bare `xyz`); else `null`. */
export function parseReplyLine(line: string): ReplyLine | null {
  const match = /^([1-5]\d\d)([ -]|$)/.exec(line);
  if (!match) return null;
  return { code: Number(match[1]), continues: match[2] === "-", text: line.slice(4) };
}

/** True when `line` ends a multi-line reply with code `code` (`xyz text` or bare `xyz`). */
export function endsReply(line: string, code: number): boolean {
  const prefix = String(code);
  return line.startsWith(prefix) && (line.length === 3 || line[3] === " ");
}

function parseByteList(text: string): number[] | null {
  const parts = text.trim().split(",");
  const bytes: number[] = [];
  for (const part of parts) {
    const trimmed = part.trim();
    if (!/^\d{1,3}$/.test(trimmed)) return null;
    const value = Number(trimmed);
    if (value > 255) return null;
    bytes.push(value);
  }
  return bytes;
}

// Addresses leave this module in one form: an IPv4-mapped IPv6 address is its IPv4 address.
function endpointFromBytes(host: number[], port: number[]): IpEndpoint {
  return {
    address: unmapIpv4({ family: host.length === 4 ? 4 : 6, bytes: Uint8Array.from(host) }),
    port: (port[0]! << 8) | port[1]!,
  };
}

/** Parses the argument of PORT (`h1,h2,h3,h4,p1,p2`); `null` when malformed. */
export function parsePort(argument: string): IpEndpoint | null {
  const bytes = parseByteList(argument);
  if (!bytes || bytes.length !== 6) return null;
  return endpointFromBytes(bytes.slice(0, 4), bytes.slice(4));
}

/**
 * Formats the six numbers of PORT and 227 (`h1,h2,h3,h4,p1,p2`).
 *
 * @throws {TypeError} for an IPv6 endpoint.
 */
export function formatHostPort(endpoint: IpEndpoint): string {
  if (endpoint.address.family !== 4) {
    throw new TypeError("Cannot format PORT address: it is not IPv4");
  }
  return `${[...endpoint.address.bytes].join(",")},${endpoint.port >> 8},${endpoint.port & 0xff}`;
}

/** The outcome of parsing EPRT or LPRT: an endpoint, an unsupported family, or `null`. */
export type ActiveParse =
  | { readonly kind: "endpoint"; readonly endpoint: IpEndpoint }
  | { readonly kind: "unsupported-family"; readonly family: number };

/**
 * Parses the argument of EPRT (`<d>1<d>a.b.c.d<d>port<d>`, any delimiter 33..126; protocol 1
 * is IPv4 and 2 is IPv6; an IPv4-mapped IPv6 address comes back as IPv4). `null` when malformed.
 */
export function parseEprt(argument: string): ActiveParse | null {
  const text = argument.trim();
  if (text.length < 7) return null;
  const delimiter = text[0]!;
  const code = delimiter.charCodeAt(0);
  if (code < 33 || code > 126 || text[text.length - 1] !== delimiter) return null;
  const parts = text.slice(1, -1).split(delimiter);
  if (parts.length !== 3) return null;
  const [protocol, host, portText] = parts as [string, string, string];
  if (!/^\d{1,5}$/.test(protocol)) return null;
  const family = Number(protocol);
  if (family !== 1 && family !== 2) return { kind: "unsupported-family", family };
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  const address = family === 1 ? parseIpv4(host) : parseIpv6(host);
  if (!address) return null;
  return { kind: "endpoint", endpoint: { address: unmapIpv4(address), port } };
}

/** Formats the argument of EPRT (`|1|192.0.2.1|50000|` or `|2|2001:db8::1|50000|`). */
export function formatEprt(endpoint: IpEndpoint): string {
  const protocol = endpoint.address.family === 4 ? 1 : 2;
  return `|${protocol}|${formatIp(endpoint.address)}|${endpoint.port}|`;
}

/**
 * Parses an RFC 1639 long host-port (`af,hal,h…,pal,p1,p2`; af 4 = IPv4 with hal 4,
 * af 6 = IPv6 with hal 16). `null` when malformed or the lengths do not fit the family.
 */
export function parseLongHostPort(text: string): ActiveParse | null {
  const bytes = parseByteList(text);
  if (!bytes || bytes.length < 2) return null;
  const af = bytes[0]!;
  if (af !== 4 && af !== 6) return { kind: "unsupported-family", family: af };
  const hal = af === 4 ? 4 : 16;
  if (bytes[1] !== hal || bytes.length !== 2 + hal + 3 || bytes[2 + hal] !== 2) return null;
  return {
    kind: "endpoint",
    endpoint: endpointFromBytes(bytes.slice(2, 2 + hal), bytes.slice(3 + hal)),
  };
}

/** Parses the argument of LPRT; see {@linkcode parseLongHostPort}. */
export function parseLprt(argument: string): ActiveParse | null {
  return parseLongHostPort(argument);
}

/** Formats an RFC 1639 long host-port (`4,4,a,b,c,d,2,p1,p2` or `6,16,…,2,p1,p2`). */
export function formatLongHostPort(endpoint: IpEndpoint): string {
  const af = endpoint.address.family === 4 ? "4,4" : "6,16";
  return `${af},${[...endpoint.address.bytes].join(",")},2,${endpoint.port >> 8},${
    endpoint.port & 0xff
  }`;
}

/**
 * Finds the six numbers of a 227 reply anywhere in its text (RFC 1123: no parentheses
 * required), each 0..255. `null` for the malformed forms real servers send on IPv6
 * (`(1,157,242)`, `(::1,158,242)`).
 */
export function parse227(text: string): IpEndpoint | null {
  const pattern = /(?<!\d)(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})(?!\d)/g;
  for (const match of text.matchAll(pattern)) {
    const bytes = match.slice(1, 7).map(Number);
    if (bytes.every((value) => value <= 255)) {
      return endpointFromBytes(bytes.slice(0, 4), bytes.slice(4));
    }
  }
  return null;
}

/** Finds the long host-port of a 228 reply (inside parentheses, or from the first digit). */
export function parse228(text: string): IpEndpoint | null {
  const inside = /\(([^()]*)\)/.exec(text)?.[1] ??
    /\d[\d,\s]*/.exec(text)?.[0];
  if (inside === undefined) return null;
  const parsed = parseLongHostPort(inside.replace(/[.\s]+$/, ""));
  return parsed?.kind === "endpoint" ? parsed.endpoint : null;
}

/** Finds the port of a 229 reply: `(<d><d><d>port<d>)` with any delimiter 33..126. */
export function parse229(text: string): number | null {
  for (const match of text.matchAll(/\(([\x21-\x7e])\1\1(\d{1,5})\1\)/g)) {
    const port = Number(match[2]);
    if (port >= 1 && port <= 65535) return port;
  }
  return null;
}

/**
 * The server's data port from a reply to any passive command: 229, 228 or 227 (servers answer
 * PASV with 228, and EPSV with 227). The address in 227/228 is never used: callers take the
 * control connection's peer. `null` when the reply carries no usable port.
 */
export function passivePort(code: number, text: string): number | null {
  let port: number | null = null;
  if (code === 229) port = parse229(text);
  else if (code === 228) port = parse228(text)?.port ?? null;
  else if (code === 227) port = parse227(text)?.port ?? null;
  return port !== null && port >= 1 ? port : null;
}

/** Formats a 227 reply line for an IPv4 endpoint. */
export function format227(endpoint: IpEndpoint): string {
  return `227 Entering Passive Mode (${formatHostPort(endpoint)}).`;
}

/** Formats a 228 reply line. */
export function format228(endpoint: IpEndpoint): string {
  return `228 Entering Long Passive Mode (${formatLongHostPort(endpoint)})`;
}

/** Formats a 229 reply line. */
export function format229(port: number): string {
  return `229 Entering Extended Passive Mode (|||${port}|)`;
}

/** Formats a 522 reply line listing the supported RFC 2428 protocols. */
export function format522(protocols: readonly number[]): string {
  return `522 Network protocol not supported, use (${protocols.join(",")})`;
}

/**
 * The protocol list of a 522 reply: the numbers inside the last `(...)`; `null` when there is
 * none (vsftpd sends `522 Bad network protocol.`).
 */
export function parse522(text: string): number[] | null {
  const groups = [...text.matchAll(/\(([^()]*)\)/g)];
  const last = groups[groups.length - 1]?.[1];
  if (last === undefined) return null;
  const numbers = [...last.matchAll(/\d+/g)].map((match) => Number(match[0]));
  return numbers.length > 0 ? numbers : null;
}

/** The RFC 2428 protocol number of a family (1 = IPv4, 2 = IPv6). */
export function eprtProtocol(family: 4 | 6): 1 | 2 {
  return family === 4 ? 1 : 2;
}
