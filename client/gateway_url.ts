/**
 * Gateway URLs: `socks5://[USER:PASS@]HOST:PORT` (also `socks5h://`), parsed once into typed
 * endpoints.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp } from "../net/address.ts";
import type { SocksCredentials } from "../socks5/client.ts";

/** One gateway the Socks Lib may use. */
export interface GatewayEndpoint {
  /** The host as written (a name, or an IP literal without brackets). */
  readonly hostname: string;
  /** The parsed address when `hostname` is an IP literal, else `null`. */
  readonly address: IpAddress | null;
  /** TCP port. */
  readonly port: number;
  /** RFC 1929 credentials from the URL's user info. */
  readonly credentials?: SocksCredentials;
}

/**
 * A URL as it may be shown in an error or a log: its user info (between `://`, or the start, and
 * the last `@`) hidden. A password after the first `:` becomes `<redacted>` and the user stays,
 * as `check` shows valid URLs; user info without a `:` (a lone user, or an escaped `%3A` that
 * may hide a password) is all redacted. Works on malformed text too, which is when it is needed.
 *
 * @example
 * ```ts
 * import { redactUserInfo } from "./gateway_url.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(redactUserInfo("socks5://alice:s3cret@h:99999"), "socks5://alice:<redacted>@h:99999");
 * assert.equal(redactUserInfo("socks5://relay%3As3cret@h:1080"), "socks5://<redacted>@h:1080");
 * assert.equal(redactUserInfo("socks5://h:1080"), "socks5://h:1080");
 * ```
 */
export function redactUserInfo(text: string): string {
  const scheme = text.indexOf("://");
  const start = scheme < 0 ? 0 : scheme + 3;
  const at = text.lastIndexOf("@");
  if (at < start) return text;
  const colon = text.indexOf(":", start);
  const keep = colon >= 0 && colon < at ? colon + 1 : start;
  return `${text.slice(0, keep)}<redacted>${text.slice(at)}`;
}

/**
 * Parses a gateway URL. The port defaults to 1080; `socks5h` is accepted as a synonym (the Socks
 * Lib always sends names to the gateway).
 *
 * @example
 * ```ts
 * import { parseGatewayUrl } from "./gateway_url.ts";
 * import assert from "node:assert/strict";
 *
 * const gateway = parseGatewayUrl("socks5://alice:s%40cret@[2001:db8::1]:1080");
 * assert.equal(gateway.hostname, "2001:db8::1");
 * assert.deepEqual(gateway.credentials, { username: "alice", password: "s@cret" });
 * ```
 *
 * @throws {TypeError} when the text is not a socks5 URL with a host; its message never shows
 * the URL's user info ({@linkcode redactUserInfo}).
 */
export function parseGatewayUrl(text: string): GatewayEndpoint {
  // Errors quote the URL as written, never its user info (printed, logged, shown by `check`).
  const shown = redactUserInfo(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `Cannot parse gateway URL "${shown}": expected socks5://[USER:PASS@]HOST:PORT`,
    );
  }
  if (url.protocol !== "socks5:" && url.protocol !== "socks5h:") {
    throw new TypeError(`Cannot parse gateway URL "${shown}": scheme must be socks5`);
  }
  if (url.pathname !== "" && url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new TypeError(`Cannot parse gateway URL "${shown}": unexpected path or query`);
  }
  const host = url.hostname;
  if (host === "") throw new TypeError(`Cannot parse gateway URL "${shown}": host is missing`);
  const address = parseIp(host);
  if (!address && (host.startsWith("[") || /^[\d.]+$/.test(host))) {
    throw new TypeError(`Cannot parse gateway URL "${shown}": "${host}" is not a valid IP address`);
  }
  const port = url.port === "" ? 1080 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`Cannot parse gateway URL "${shown}": port must be 1..65535`);
  }
  const endpoint = { hostname: address ? formatIp(address) : host.toLowerCase(), address, port };
  if (url.username === "" && url.password === "") return endpoint;
  let username: string, password: string;
  try {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw new TypeError(`Cannot parse gateway URL "${shown}": malformed %-escape in user info`);
  }
  if (username === "" || password === "") {
    throw new TypeError(`Cannot parse gateway URL "${shown}": both user and password are needed`);
  }
  return { ...endpoint, credentials: { username, password } };
}

/** Formats a gateway back to a URL (`socks5h://` when `scheme` says so), credentials included. */
export function formatGatewayUrl(gateway: GatewayEndpoint, scheme = "socks5"): string {
  const host = gateway.address?.family === 6 ? `[${gateway.hostname}]` : gateway.hostname;
  const auth = gateway.credentials
    ? `${encodeURIComponent(gateway.credentials.username)}:${
      encodeURIComponent(gateway.credentials.password)
    }@`
    : "";
  return `${scheme}://${auth}${host}:${gateway.port}`;
}
