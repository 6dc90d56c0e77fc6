import assert from "node:assert/strict";
import { type IpAddress, parseIp } from "../net/address.ts";
import { parseCidr } from "../net/cidr.ts";
import { parseConfig } from "./config/load.ts";
import { isTrustedProxy, proxyTrustWarnings } from "./proxy_trust.ts";

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

Deno.test("proxyTrustWarnings() warns about a non-loopback PROXY listener without trusted_proxies", () => {
  const config = parseConfig(`listen:
  - "192.0.2.10:1080"
  - { address: "192.0.2.10:1081", proxy_protocol: v2 }
  - { address: "127.0.0.1:1082", proxy_protocol: v2 }
  - { address: "[::]:1083", proxy_protocol: any }
  - { address: "[2001:db8::10]:1084", proxy_protocol: v1, trusted_proxies: ["2001:db8::/32"] }
`);
  const warnings = proxyTrustWarnings(config);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /^listen\[1\]: 192\.0\.2\.10:1081 .*trusted_proxies/);
  assert.match(warnings[1]!, /^listen\[3\]: \[::\]:1083 /);
});
