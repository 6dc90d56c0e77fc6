/**
 * CIDR prefixes (`192.0.2.0/24`, `2001:db8::/32`), parsed once and matched against typed addresses.
 *
 * @module
 */

import { formatIp, type IpAddress, parseIp } from "./address.ts";

/** A parsed CIDR prefix. */
export interface Cidr {
  /** The network address, host bits cleared. */
  readonly network: IpAddress;
  /** Prefix length in bits. */
  readonly prefixLength: number;
}

/**
 * Parses `ADDRESS/LEN` or a bare address (a /32 or /128).
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
  return { network: { family: address.family, bytes }, prefixLength };
}

/** True when `address` lies inside `cidr` (families must match). */
export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
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

/** Loopback and unspecified ranges: what "the gateway host itself" answers on. */
export const HOST_LOCAL_CIDRS: readonly Cidr[] = [
  "127.0.0.0/8",
  "0.0.0.0/32",
  "::1/128",
  "::/128",
  "::ffff:127.0.0.0/104",
].map(parseCidr);
