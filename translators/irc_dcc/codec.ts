/**
 * The wire forms of IRC DCC offers: IRC message lines (RFC 1459 §2.3.1, IRCv3 message tags),
 * CTCP segments inside a PRIVMSG or NOTICE text (`\x01DCC SEND …\x01`), and the DCC
 * arguments: an IPv4 address as a 32-bit decimal integer (or, in modern clients, an IPv6 or
 * dotted-quad text form), a port, and for file offers a file name (quoted when it holds a
 * space), a size and, for passive ("reverse") DCC, a token. Pure: no I/O.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp, unmapIpv4 } from "../../net/address.ts";

/** The DCC requests the translator knows. */
export type DccType = "SEND" | "CHAT" | "RESUME" | "ACCEPT";

/** An offer: `DCC SEND name address port [size [token]]` or `DCC CHAT chat address port [token]`. */
export interface DccOffer {
  /** `SEND` or `CHAT`. */
  readonly type: "SEND" | "CHAT";
  /** The file name as written (quotes kept), or CHAT's protocol word (`chat`). */
  readonly argument: string;
  /** The offerer's address. */
  readonly address: IpAddress;
  /** The offerer's port; 0 asks the peer to listen instead (passive DCC, with a token). */
  readonly port: number;
  /** What follows the port, as written: SEND's size and token, CHAT's token. */
  readonly rest: readonly string[];
}

/** `DCC RESUME name port position [token]` or `DCC ACCEPT name port position [token]`. */
export interface DccResume {
  /** `RESUME` (receiver asks) or `ACCEPT` (sender agrees). */
  readonly type: "RESUME" | "ACCEPT";
  /** The file name as written (quotes kept). */
  readonly argument: string;
  /** The port of the offer this refers to (0 for a passive offer). */
  readonly port: number;
  /** The position and the token, as written. */
  readonly rest: readonly string[];
}

/** A DCC request inside a CTCP segment. */
export type DccRequest = DccOffer | DccResume;

/** True for SEND and CHAT, the requests that carry an address. */
export function isOffer(request: DccRequest): request is DccOffer {
  return request.type === "SEND" || request.type === "CHAT";
}

/** The result of {@linkcode parseDcc}: a request, or why the body is refused. */
export type DccParse =
  | { readonly ok: true; readonly request: DccRequest }
  | { readonly ok: false; readonly reason: string };

/** Where a PRIVMSG or NOTICE line's text starts, with the parts before it. */
export interface IrcTextMessage {
  /** Everything before the text, including the `:` that starts it. */
  readonly head: string;
  /** The command, upper-cased (`PRIVMSG`, `NOTICE`). */
  readonly command: string;
  /** The text (the trailing parameter). */
  readonly text: string;
}

/** A CTCP segment: the text between two `\x01` (the second may be missing at the end). */
export interface CtcpSegment {
  /** The body, without the delimiters. */
  readonly body: string;
  /** Whether the closing `\x01` was there. */
  readonly closed: boolean;
}

/** Text pieces and CTCP segments of a message text, in order. */
export type TextPart = { readonly kind: "text"; readonly text: string } | {
  readonly kind: "ctcp";
  readonly segment: CtcpSegment;
};

/** A CTCP that starts with `DCC` in any case, anywhere in a line, after optional blanks. */
// deno-lint-ignore no-control-regex -- the CTCP delimiter is what this looks for
const DCC_ANYWHERE = /\x01[\s]*dcc/i;
const DIGITS = /^\d+$/;
const TOKEN = /^[A-Za-z0-9]{1,32}$/;
const MAX_IPV4_INTEGER = 0xffffffff;

/**
 * True when a line may carry a DCC request (a `\x01` followed by `DCC` in any case): such a
 * line is either translated or refused, never passed on as it is.
 */
export function mentionsDcc(line: string): boolean {
  return DCC_ANYWHERE.test(line);
}

/**
 * Splits a PRIVMSG or NOTICE line into its head and text (`@tags :prefix PRIVMSG target
 * :text`). Returns `null` for other commands, or when the text is not a trailing parameter.
 */
export function parseTextMessage(line: string): IrcTextMessage | null {
  let offset = 0;
  const word = (): string | null => {
    if (offset >= line.length || line[offset] === " ") return null;
    const end = line.indexOf(" ", offset);
    const token = line.slice(offset, end < 0 ? line.length : end);
    offset = end < 0 ? line.length : end + 1;
    return token;
  };
  if (line.startsWith("@") && word() === null) return null;
  if (line[offset] === ":" && word() === null) return null;
  const command = word()?.toUpperCase();
  if (command !== "PRIVMSG" && command !== "NOTICE") return null;
  // One target, then the text: `:` marks it (clients always send DCC in a trailing parameter).
  if (word() === null) return null;
  if (line[offset] !== ":") return null;
  return { head: line.slice(0, offset + 1), command, text: line.slice(offset + 1) };
}

/** Splits a message text into plain pieces and CTCP segments. */
export function splitCtcp(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let offset = 0;
  while (offset < text.length) {
    const start = text.indexOf("\x01", offset);
    if (start < 0) {
      parts.push({ kind: "text", text: text.slice(offset) });
      break;
    }
    if (start > offset) parts.push({ kind: "text", text: text.slice(offset, start) });
    const end = text.indexOf("\x01", start + 1);
    if (end < 0) {
      parts.push({ kind: "ctcp", segment: { body: text.slice(start + 1), closed: false } });
      break;
    }
    parts.push({ kind: "ctcp", segment: { body: text.slice(start + 1, end), closed: true } });
    offset = end + 1;
  }
  return parts;
}

/** Joins parts back into a message text (an unclosed CTCP stays unclosed). */
export function joinCtcp(parts: readonly TextPart[]): string {
  return parts.map((part) =>
    part.kind === "text"
      ? part.text
      : `\x01${part.segment.body}${part.segment.closed ? "\x01" : ""}`
  ).join("");
}

/** True when a CTCP body is a DCC request (`DCC` in any case, after optional blanks). */
export function isDccBody(body: string): boolean {
  return /^\s*dcc(\s|$)/i.test(body);
}

/**
 * Parses a DCC address: a decimal 32-bit integer (IPv4), or an IPv6 or dotted-quad text form.
 * Anything else (hexadecimal, a sign, more than 32 bits, a name) is `null`.
 */
export function parseDccAddress(text: string): IpAddress | null {
  if (DIGITS.test(text)) {
    if (text.length > 10) return null;
    const value = Number(text);
    if (value > MAX_IPV4_INTEGER) return null;
    return {
      family: 4,
      bytes: Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff),
    };
  }
  if (text.startsWith("[")) return null;
  const address = parseIp(text);
  // An IPv4-mapped IPv6 address is the IPv4 address, for every check that follows.
  return address && unmapIpv4(address);
}

/** The DCC form of an address: IPv4 as its 32-bit decimal integer, IPv6 as RFC 5952 text. */
export function formatDccAddress(address: IpAddress): string {
  if (address.family === 6) return formatIp(address);
  const [a, b, c, d] = address.bytes;
  return String(((a! << 24) >>> 0) + (b! << 16) + (c! << 8) + d!);
}

function parsePort(text: string | undefined): number | null {
  if (text === undefined || !DIGITS.test(text) || text.length > 5) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

/** Splits the first argument (quoted or not) from the rest of the arguments. */
function splitArguments(args: string): { first: string; rest: string[] } | null {
  let first: string;
  let rest: string;
  if (args.startsWith('"')) {
    const end = args.indexOf('"', 1);
    if (end < 1) return null;
    first = args.slice(0, end + 1);
    rest = args.slice(end + 1);
    if (rest !== "" && !rest.startsWith(" ")) return null;
  } else {
    const end = args.indexOf(" ");
    first = end < 0 ? args : args.slice(0, end);
    rest = end < 0 ? "" : args.slice(end);
  }
  if (first === "" || first === '""') return null;
  return { first, rest: rest.split(" ").filter((word) => word !== "") };
}

function validRest(rest: readonly string[], numbers: number): boolean {
  // SEND: size, then an optional token; CHAT: an optional token; RESUME/ACCEPT: position, token.
  return rest.every((word, i) =>
    i < numbers ? DIGITS.test(word) && word.length <= 20 : TOKEN.test(word)
  );
}

/**
 * Parses a CTCP body that {@linkcode isDccBody} accepted. The type is case-insensitive and
 * becomes upper case; anything the translator cannot re-form exactly (unknown types, a bad
 * address or port, extra words, control bytes) is refused with a reason.
 */
export function parseDcc(body: string): DccParse {
  const refuse = (reason: string): DccParse => ({ ok: false, reason });
  // deno-lint-ignore no-control-regex -- control bytes are what this refuses
  if (/[\x00-\x1f\x7f]/.test(body)) return refuse("control byte in a DCC request");
  const match = /^\s*dcc +([A-Za-z]+) +(.*?) *$/i.exec(body);
  if (!match) return refuse("malformed DCC request");
  const type = match[1]!.toUpperCase();
  const split = splitArguments(match[2]!);
  if (!split) return refuse(`malformed DCC ${type} arguments`);
  const { first: argument, rest: words } = split;
  if (type === "SEND" || type === "CHAT") {
    const address = parseDccAddress(words[0] ?? "");
    if (!address) return refuse(`bad address in DCC ${type}`);
    const port = parsePort(words[1]);
    if (port === null) return refuse(`bad port in DCC ${type}`);
    const rest = words.slice(2);
    const numbers = type === "SEND" ? 1 : 0;
    if (rest.length > numbers + 1 || !validRest(rest, numbers)) {
      return refuse(`unexpected words after the port in DCC ${type}`);
    }
    if (port === 0 && rest.length !== numbers + 1) {
      return refuse(`passive DCC ${type} without a token`);
    }
    return { ok: true, request: { type, argument, address, port, rest } };
  }
  if (type === "RESUME" || type === "ACCEPT") {
    const port = parsePort(words[0]);
    if (port === null) return refuse(`bad port in DCC ${type}`);
    const rest = words.slice(1);
    if (rest.length < 1 || rest.length > 2 || !validRest(rest, 1)) {
      return refuse(`bad position in DCC ${type}`);
    }
    return { ok: true, request: { type, argument, port, rest } };
  }
  return refuse(`DCC ${type} is not translated`);
}

/** The CTCP body of a request, in the one form the translator sends. */
export function formatDcc(request: DccRequest): string {
  const words = isOffer(request)
    ? [request.argument, formatDccAddress(request.address), String(request.port), ...request.rest]
    : [request.argument, String(request.port), ...request.rest];
  return `DCC ${request.type} ${words.join(" ")}`;
}
