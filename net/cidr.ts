/**
 * CIDR prefixes (`192.0.2.0/24`, `2001:db8::/32`), parsed once and matched against typed addresses.
 *
 * One form for IPv4: a prefix inside `::ffff:0:0/96` (IPv4-mapped IPv6) is parsed as the IPv4
 * prefix it stands for, and an IPv4-mapped address is matched as its IPv4 address, so an IPv4
 * prefix matches an IPv4 destination however it was written.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp, unmapIpv4 } from "./address.ts";

/** A parsed CIDR prefix. */
export interface Cidr {
  /** The network address, host bits cleared. */
  readonly network: IpAddress;
  /** Prefix length in bits. */
  readonly prefixLength: number;
}

/**
 * Parses `ADDRESS/LEN` or a bare address (a /32 or /128). An IPv4-mapped prefix of length 96 or
 * more (`::ffff:10.0.0.0/104`) becomes the IPv4 prefix it covers (`10.0.0.0/8`).
 *
 * @throws {RangeError} when the text is not a CIDR of either family.
 */
export function parseCidr(text: string): Cidr {
  const [addressText, lengthText, extra] = text.split("/");
  const address = parseIp(addressText ?? "");
  if (!address || extra !== undefined) {
    throw new RangeError(`Cannot parse CIDR: "${text}" is not ADDRESS/LENGTH`);
  }
  const maxLength = address.family === 4 ? 32 : 128;
  const prefixLength = lengthText === undefined ? maxLength : Number(lengthText);
  if (
    !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > maxLength ||
    (lengthText !== undefined && !/^\d{1,3}$/.test(lengthText))
  ) {
    throw new RangeError(`Cannot parse CIDR: prefix length of "${text}" must be 0..${maxLength}`);
  }
  const bytes = address.bytes.slice();
  for (let bit = prefixLength; bit < maxLength; bit++) {
    bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  }
  const network: IpAddress = { family: address.family, bytes };
  if (address.family === 6 && prefixLength >= 96) {
    const v4 = unmapIpv4(network);
    if (v4.family === 4) return { network: v4, prefixLength: prefixLength - 96 };
  }
  return { network, prefixLength };
}

/**
 * True when `address` lies inside `cidr`. An IPv4-mapped address is matched as its IPv4 address
 * (so `10.0.0.0/8` contains `::ffff:10.1.2.3`, and no IPv6 prefix does); otherwise the families
 * must match.
 */
export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  if (address.family === 6 && address.bytes[10] === 0xff) address = unmapIpv4(address);
  if (cidr.network.family !== address.family) return false;
  const full = cidr.prefixLength >> 3;
  const net = cidr.network.bytes, bytes = address.bytes;
  for (let i = 0; i < full; i++) if (net[i] !== bytes[i]) return false;
  const rest = cidr.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (net[full]! & mask) === (bytes[full]! & mask);
}

/** Formats a prefix as `network/length`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.network)}/${cidr.prefixLength}`;
}

/** True when every address of `inner` lies inside `outer`. */
export function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.network.family === outer.network.family &&
    inner.prefixLength >= outer.prefixLength && cidrContains(outer, inner.network);
}

/**
 * Loopback and "this host" ranges: what the gateway host answers on whatever its interfaces are.
 * Linux connects 0.0.0.0/8 and `::` to the host itself, like 127.0.0.0/8 and `::1`. Their
 * IPv4-mapped forms (`::ffff:0.0.0.0`, `::ffff:127.0.0.1`) are covered too, since
 * {@linkcode cidrContains} matches a mapped address as IPv4.
 */
export const HOST_LOCAL_CIDRS: readonly Cidr[] = [
  "0.0.0.0/8",
  "127.0.0.0/8",
  "::/128",
  "::1/128",
].map(parseCidr);

/** Loopback: `127.0.0.0/8` and `::1`. */
export const LOOPBACK_CIDRS: readonly Cidr[] = ["127.0.0.0/8", "::1/128"].map(parseCidr);

/**
 * True when `address`, in any form (IPv4-mapped too), is a loopback or "this host" address
 * ({@linkcode HOST_LOCAL_CIDRS}). The host's interface addresses are not known here.
 */
export function isHostLocal(address: IpAddress): boolean {
  return HOST_LOCAL_CIDRS.some((cidr) => cidrContains(cidr, address));
}

/** True when `address`, in any form (IPv4-mapped too), is loopback: 127.0.0.0/8 or `::1`. */
export function isLoopback(address: IpAddress): boolean {
  return LOOPBACK_CIDRS.some((cidr) => cidrContains(cidr, address));
}

/**
 * Multicast and limited-broadcast ranges: `224.0.0.0/4`, `255.255.255.255/32` and `ff00::/8`.
 * A datagram to one of these reaches every listener of a group or of the gateway's LAN, not
 * one peer. IPv4-mapped forms are covered ({@linkcode cidrContains}).
 */
export const MULTICAST_BROADCAST_CIDRS: readonly Cidr[] = [
  "224.0.0.0/4",
  "255.255.255.255/32",
  "ff00::/8",
].map(parseCidr);

/** True when `address`, in any form, is multicast or the limited broadcast address. */
export function isMulticastOrBroadcast(address: IpAddress): boolean {
  return MULTICAST_BROADCAST_CIDRS.some((cidr) => cidrContains(cidr, address));
}
