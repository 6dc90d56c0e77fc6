/**
 * Private string parsers for the config edge: endpoints, DNS servers and host names.
 * Each returns the parsed value or a reason (lower case, for a `ConfigError`).
 *
 * @module
 */

import {
  formatEndpoint,
  formatIp,
  type IpEndpoint,
  parseIp,
  parseIpv6,
} from "../../net/address.ts";
import { redactUserInfo } from "../../client/gateway_url.ts";

/** A parse result: the value, or why there is none. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const no = <T>(reason: string): Parsed<T> => ({ ok: false, reason });

/** Parses a port written as decimal digits in `min..65535`. */
export function parsePort(text: string, min: number): Parsed<number> {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= min && port <= 65535)) return no(`port "${text}" must be ${min}..65535`);
  return ok(port);
}

/**
 * Splits `ADDR:PORT` / `[V6]:PORT`. With `portOptional`, a bare address (bracketed or not)
 * has port `null`. An unbracketed IPv6 address with a port is refused: it is ambiguous.
 */
function splitHostPort(
  text: string,
  portOptional: boolean,
): Parsed<{ host: string; port: string | null }> {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return no(`"${text}" has "[" without "]"`);
    const host = text.slice(1, close), rest = text.slice(close + 1);
    if (rest === "" && portOptional) return ok({ host, port: null });
    if (!rest.startsWith(":")) return no(`"${text}" must be [IPV6]:PORT`);
    return ok({ host, port: rest.slice(1) });
  }
  const colon = text.lastIndexOf(":");
  if (colon < 0) {
    return portOptional ? ok({ host: text, port: null }) : no(`"${text}" must be ADDRESS:PORT`);
  }
  const host = text.slice(0, colon);
  if (host.includes(":")) {
    if (portOptional && parseIpv6(text)) return ok({ host: text, port: null });
    return no(`IPv6 address in "${text}" must be in brackets ([2001:db8::1]:1080)`);
  }
  return ok({ host, port: text.slice(colon + 1) });
}

/** Parses a listen address: `192.0.2.10:1080` or `[2001:db8::10]:1080`, port 0..65535 (0: any free port). */
export function parseListenAddress(text: string): Parsed<IpEndpoint> {
  const split = splitHostPort(text.trim(), false);
  if (!split.ok) return split;
  const { host, port } = split.value;
  const bracketed = text.trim().startsWith("[");
  const address = bracketed ? parseIpv6(host) : parseIp(host);
  if (!address || (!bracketed && address.family === 6)) {
    return no(`"${host}" is not an IP${bracketed ? "v6" : "v4"} address`);
  }
  const parsedPort = parsePort(port ?? "", 0);
  if (!parsedPort.ok) return parsedPort;
  return ok({ address, port: parsedPort.value });
}

/** Parses a DNS server (`IP`, `IP:PORT`, `[V6]:PORT`) into its canonical text form. */
export function parseServer(text: string): Parsed<string> {
  const split = splitHostPort(text.trim(), true);
  if (!split.ok) return split;
  const { host, port } = split.value;
  const address = parseIp(host);
  if (!address) return no(`"${host}" is not an IP address`);
  if (port === null) return ok(formatIp(address));
  const parsedPort = parsePort(port, 1);
  if (!parsedPort.ok) return parsedPort;
  return ok(formatEndpoint({ address, port: parsedPort.value }));
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Normalises a host name: lower case, one trailing dot removed, labels of 1..63 letters,
 * digits, `-` or `_`, at most 253 characters. Non-ASCII names must be given in punycode.
 */
export function normalizeName(text: string): Parsed<string> {
  const name = (text.endsWith(".") ? text.slice(0, -1) : text).toLowerCase();
  if (name === "") return no("host name must not be empty");
  if (parseIp(name)) return no(`"${text}" is an IP address, not a host name`);
  // deno-lint-ignore no-control-regex
  if (/[^\x00-\x7f]/.test(name)) return no(`"${text}" must be written in punycode (xn--...)`);
  if (name.length > 253 || !name.split(".").every((label) => LABEL.test(label))) {
    return no(`"${text}" is not a valid host name`);
  }
  return ok(name);
}

/**
 * A URL as it may be shown in an error: its user info redacted whenever an `@` is present
 * (`client/gateway_url.ts`'s `redactUserInfo`): the password after the first `:` becomes
 * `<redacted>` (`socks5://alice:s3cret@host:99999` → `socks5://alice:<redacted>@host:99999`),
 * user info without a `:` is all redacted (`socks5://s3cret@host` → `socks5://<redacted>@host`).
 */
export function redactUrlPassword(text: string): string {
  return redactUserInfo(text);
}
