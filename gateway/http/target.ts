/**
 * Proxy request targets (RFC 9112 §3.2): the authority-form of `CONNECT host:port`, and the
 * absolute-form `http://host[:port]/path` of a forwarded request, as a SOCKS-shaped target
 * (a name, or an address for a literal) so that rules, routes and dialing treat it as they
 * treat a SOCKS CONNECT.
 *
 * @module
 */

import { parseIp, unmapIpv4 } from "../../net/address.ts";
import { normalizeName } from "../../resolver/mod.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { HttpError } from "./errors.ts";

/** A forwarded request's destination and the origin-form target to send it. */
export interface AbsoluteTarget {
  /** Host and port to connect to. */
  readonly target: SocksTarget;
  /** Path and query (`/` when empty). */
  readonly path: string;
  /** The `Host` value for the forwarded request (the URI's authority). */
  readonly host: string;
}

function parseHostPort(authority: string, defaultPort: number | undefined): SocksTarget {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]*))?$/.exec(authority);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    const address = parseIp(host);
    if (address === null || address.family !== 6) throw new HttpError(400, "invalid IPv6 host");
    return { address: unmapIpv4(address), port: parsePort(portText, defaultPort) };
  }
  const colon = authority.lastIndexOf(":");
  if (colon >= 0) {
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
  } else {
    host = authority;
  }
  const port = parsePort(portText, defaultPort);
  const address = /^[0-9.]+$/.test(host) ? parseIp(host) : null;
  if (address !== null) return { address, port };
  if (!/^[A-Za-z0-9._-]+$/.test(host) || normalizeName(host) === null) {
    throw new HttpError(400, "invalid host");
  }
  return { address: { family: "name", name: host }, port };
}

function parsePort(text: string | undefined, defaultPort: number | undefined): number {
  if (text === undefined || text === "") {
    if (defaultPort === undefined) throw new HttpError(400, "CONNECT target without a port");
    return defaultPort;
  }
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : 0;
  if (port < 1 || port > 65535) throw new HttpError(400, "invalid port");
  return port;
}

/** Parses the `host:port` of a CONNECT request (port required). */
export function parseConnectTarget(authority: string): SocksTarget {
  return parseHostPort(authority, undefined);
}

/**
 * Parses an absolute-form `http://` target. Other schemes are a 400 (`https://` goes through
 * CONNECT); userinfo in the authority is refused, as RFC 9110 §4.2.4 deprecates it.
 */
export function parseAbsoluteTarget(uri: string): AbsoluteTarget {
  const match = /^http:\/\/([^/?#]*)([^#]*)/i.exec(uri);
  if (match === null) {
    throw new HttpError(
      400,
      uri.startsWith("/")
        ? "not a proxy request: the target must be absolute (http://host/...)"
        : "only http:// targets are forwarded (https goes through CONNECT)",
    );
  }
  const authority = match[1]!;
  if (authority.includes("@")) throw new HttpError(400, "userinfo in the request target");
  const target = parseHostPort(authority, 80);
  const rest = match[2]!;
  const path = rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest;
  return { target, path, host: authority };
}
