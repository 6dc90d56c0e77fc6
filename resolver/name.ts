/**
 * Names as sent in SOCKS ATYP 3: normalization, and IP literals sent as names.
 *
 * @module
 */

import { type IpAddress, parseIp, unmapIpv4 } from "../net/address.ts";

/** Longest textual name DNS can carry (RFC 1035: 255 octets on the wire, 253 as text). */
const MAX_NAME_BYTES = 253;
/** Longest label (RFC 1035 §2.3.4). */
const MAX_LABEL_BYTES = 63;

const encoder = new TextEncoder();

/**
 * Normalizes a host name for lookups and cache keys: lower case, one trailing dot removed.
 *
 * Returns `null` for a name that cannot be looked up: empty, longer than 253 bytes, with an
 * empty or over-long (> 63 bytes) label, or containing white space or control characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeName } from "./name.ts";
 *
 * assert.equal(normalizeName("WWW.Example.COM."), "www.example.com");
 * assert.equal(normalizeName("bad name"), null);
 * ```
 */
export function normalizeName(name: string): string | null {
  const lower = (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
  if (lower === "" || encoder.encode(lower).length > MAX_NAME_BYTES) return null;
  // deno-lint-ignore no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(lower)) return null;
  for (const label of lower.split(".")) {
    const length = encoder.encode(label).length;
    if (length === 0 || length > MAX_LABEL_BYTES) return null;
  }
  return lower;
}

/**
 * Returns the address when a name is really an IP literal (`192.0.2.1`, `2001:db8::1`,
 * `[2001:db8::1]`, also with the one trailing dot {@linkcode normalizeName} drops:
 * `192.0.2.1.`), else `null`. IPv4-mapped IPv6 (`::ffff:192.0.2.1`) comes back as IPv4,
 * so that it is dialed as the IPv4 address it stands for. Zone-scoped literals
 * (`fe80::1%eth0`) are not addresses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { literalAddress } from "./name.ts";
 *
 * assert.equal(literalAddress("[2001:db8::1]")?.family, 6);
 * assert.equal(literalAddress("::ffff:192.0.2.1")?.family, 4);
 * assert.equal(literalAddress("192.0.2.1.")?.family, 4);
 * assert.equal(literalAddress("example.com"), null);
 * ```
 */
export function literalAddress(name: string): IpAddress | null {
  // A name that normalises to a literal is that literal, for every check and every hop.
  const address = parseIp(name.endsWith(".") ? name.slice(0, -1) : name);
  return address ? unmapIpv4(address) : null;
}

/** True for `localhost` and names under it (RFC 6761 §6.3); `name` normalised. */
export function isLocalhostName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost");
}
