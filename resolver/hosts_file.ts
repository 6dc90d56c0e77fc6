/**
 * Hosts file parsing (`/etc/hosts` format).
 *
 * @module
 */

import { type IpAddress, parseIp, sameIp, unmapIpv4 } from "../net/address.ts";
import { normalizeName } from "./name.ts";

/**
 * Parses hosts file text into a map from normalized name to its addresses, in file order.
 *
 * Each line is `ADDRESS NAME [ALIAS...]`; `#` starts a comment. Lines whose address is not a
 * strict IPv4 or IPv6 literal are skipped, zone-scoped ones (`fe80::1%eth0`) included, and so
 * are names that {@linkcode normalizeName} rejects. A name on several lines collects all their
 * addresses (so `localhost` gets both `127.0.0.1` and `::1`), without duplicates.
 * IPv4-mapped IPv6 addresses are stored as IPv4.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHostsFile } from "./hosts_file.ts";
 *
 * const hosts = parseHostsFile("127.0.0.1 localhost\n::1 localhost # loopback\n");
 * assert.deepEqual(hosts.get("localhost")?.map((a) => a.family), [4, 6]);
 * ```
 */
export function parseHostsFile(text: string): Map<string, IpAddress[]> {
  const hosts = new Map<string, IpAddress[]>();
  for (const rawLine of text.split(/\r?\n/)) {
    const hash = rawLine.indexOf("#");
    const line = hash >= 0 ? rawLine.slice(0, hash) : rawLine;
    const [addressText, ...names] = line.trim().split(/\s+/);
    if (!addressText || names.length === 0) continue;
    const parsed = parseIp(addressText);
    // Brackets are not hosts file syntax.
    if (!parsed || addressText.startsWith("[")) continue;
    const address = unmapIpv4(parsed);
    for (const rawName of names) {
      const name = normalizeName(rawName);
      if (name === null) continue;
      const list = hosts.get(name);
      if (!list) hosts.set(name, [address]);
      else if (!list.some((known) => sameIp(known, address))) list.push(address);
    }
  }
  return hosts;
}
