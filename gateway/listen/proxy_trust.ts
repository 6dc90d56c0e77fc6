/**
 * Who may send a PROXY protocol header. A header names the client that rules, the failed-login
 * limiter and logs see, so it is taken only from the balancers a listener names in
 * `trusted_proxies` (loopback when it names none); a connection from anyone else is closed
 * before a byte is read.
 *
 * @module
 */

import type { IpAddress } from "../../net/address.ts";
import { type Cidr, cidrContains, LOOPBACK_CIDRS } from "../../net/cidr.ts";

/** The sources trusted to send PROXY headers on a listener without `trusted_proxies`. */
export const LOOPBACK_PROXIES: readonly Cidr[] = LOOPBACK_CIDRS;

/**
 * True when `peer` (the TCP peer of a PROXY protocol listener) may send a header. The peer is
 * normalised (IPv4-mapped IPv6 is IPv4), and an IPv4 peer also matches a prefix written in
 * IPv4-mapped form (`::ffff:192.0.2.0/120`).
 *
 * @example
 * ```ts
 * import { parseCidr } from "../../net/cidr.ts";
 * import { parseIp } from "../../net/address.ts";
 * import { isTrustedProxy } from "./proxy_trust.ts";
 *
 * console.log(isTrustedProxy(parseIp("::ffff:127.0.0.1")!)); // true: loopback by default
 * console.log(isTrustedProxy(parseIp("192.0.2.9")!, [parseCidr("192.0.2.0/24")])); // true
 * console.log(isTrustedProxy(parseIp("198.51.100.1")!, [parseCidr("192.0.2.0/24")])); // false
 * ```
 *
 * @param peer The connection's remote address.
 * @param trusted The listener's `trusted_proxies`. @default LOOPBACK_PROXIES
 */
export function isTrustedProxy(
  peer: IpAddress,
  trusted: readonly Cidr[] = LOOPBACK_PROXIES,
): boolean {
  // cidrContains matches a mapped peer as IPv4, and parseCidr reads a mapped prefix as IPv4.
  return trusted.some((cidr) => cidrContains(cidr, peer));
}
