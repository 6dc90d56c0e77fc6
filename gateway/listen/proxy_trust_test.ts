import assert from "node:assert/strict";
import { type IpAddress, parseIp } from "../../net/address.ts";
import { parseCidr } from "../../net/cidr.ts";
import { isTrustedProxy } from "./proxy_trust.ts";

const ip = (text: string): IpAddress => parseIp(text)!;

Deno.test("isTrustedProxy() trusts only loopback without trusted_proxies", () => {
  for (const peer of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(isTrustedProxy(ip(peer)), true, peer);
  }
  for (const peer of ["192.0.2.2", "2001:db8:1::2", "::ffff:192.0.2.2", "0.0.0.0", "::"]) {
    assert.equal(isTrustedProxy(ip(peer)), false, peer);
  }
});

Deno.test("isTrustedProxy() matches the normalised peer against trusted_proxies", () => {
  const trusted = [parseCidr("192.0.2.0/24"), parseCidr("2001:db8:1::/64")];
  assert.equal(isTrustedProxy(ip("192.0.2.9"), trusted), true);
  assert.equal(isTrustedProxy(ip("::ffff:192.0.2.9"), trusted), true);
  assert.equal(isTrustedProxy(ip("2001:db8:1::2"), trusted), true);
  assert.equal(isTrustedProxy(ip("198.51.100.1"), trusted), false);
  // Naming proxies replaces the loopback default.
  assert.equal(isTrustedProxy(ip("127.0.0.1"), trusted), false);
  // A prefix written in IPv4-mapped form matches the IPv4 peer it denotes.
  const mapped = [parseCidr("::ffff:198.51.100.0/120")];
  assert.equal(isTrustedProxy(ip("198.51.100.7"), mapped), true);
  assert.equal(isTrustedProxy(ip("198.51.101.7"), mapped), false);
});
