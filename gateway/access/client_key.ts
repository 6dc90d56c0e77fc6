/**
 * What one client is for the per-client limits (connections, failed logins, scrypt share): an
 * IPv4 address (its /32), or the IPv6 prefix (a /64 by default) holding the address. A host
 * given an IPv6 /64 can use any of its 2^64 addresses, so keying by the full address would give
 * an attacker unlimited keys; an IPv4-mapped address counts as the IPv4 address it stands for.
 *
 * @module
 */

import { formatIp, type IpAddress, unmapIpv4 } from "../../net/address.ts";

/** The default IPv6 prefix length of one client. */
export const DEFAULT_IPV6_CLIENT_PREFIX = 64;

/**
 * The per-client key of `address`: `192.0.2.7` for IPv4 (and IPv4-mapped IPv6), the network of
 * the `ipv6Prefix` holding it for IPv6 (`2001:db8:1::/64`).
 *
 * @example
 * ```ts
 * import { clientKey } from "./client_key.ts";
 * import { parseIp } from "../../net/address.ts";
 *
 * console.log(clientKey(parseIp("2001:db8:1::1:5")!)); // "2001:db8:1::/64"
 * console.log(clientKey(parseIp("::ffff:192.0.2.7")!)); // "192.0.2.7"
 * ```
 *
 * @throws {RangeError} when `ipv6Prefix` is not an integer from 0 to 128.
 */
export function clientKey(address: IpAddress, ipv6Prefix = DEFAULT_IPV6_CLIENT_PREFIX): string {
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 0 || ipv6Prefix > 128) {
    throw new RangeError(`Cannot key client: IPv6 prefix ${ipv6Prefix} is not 0..128`);
  }
  const ip = unmapIpv4(address);
  if (ip.family === 4) return formatIp(ip);
  const bytes = ip.bytes.slice();
  for (let bit = ipv6Prefix; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatIp({ family: 6, bytes })}/${ipv6Prefix}`;
}
