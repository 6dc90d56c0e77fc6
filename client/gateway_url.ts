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
 * @throws {TypeError} when the text is not a socks5 URL with a host.
 */
export function parseGatewayUrl(text: string): GatewayEndpoint {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `Cannot parse gateway URL "${text}": expected socks5://[USER:PASS@]HOST:PORT`,
    );
  }
  if (url.protocol !== "socks5:" && url.protocol !== "socks5h:") {
    throw new TypeError(`Cannot parse gateway URL "${text}": scheme must be socks5`);
  }
  if (url.pathname !== "" && url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new TypeError(`Cannot parse gateway URL "${text}": unexpected path or query`);
  }
  const host = url.hostname;
  if (host === "") throw new TypeError(`Cannot parse gateway URL "${text}": host is missing`);
  const address = parseIp(host);
  if (!address && (host.startsWith("[") || /^[\d.]+$/.test(host))) {
    throw new TypeError(`Cannot parse gateway URL "${text}": "${host}" is not a valid IP address`);
  }
  const port = url.port === "" ? 1080 : Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`Cannot parse gateway URL "${text}": port must be 1..65535`);
  }
  const endpoint = { hostname: address ? formatIp(address) : host.toLowerCase(), address, port };
  if (url.username === "" && url.password === "") return endpoint;
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (username === "" || password === "") {
    throw new TypeError(`Cannot parse gateway URL "${text}": both user and password are needed`);
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
