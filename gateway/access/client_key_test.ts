import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { clientKey } from "./client_key.ts";

const ip = (text: string) => parseIp(text)!;

Deno.test("clientKey() keys an IPv6 client by its /64, so its other addresses are the same client", () => {
  const key = clientKey(ip("2001:db8:1::2"));
  assert.equal(key, "2001:db8:1::/64");
  for (const other of ["2001:db8:1::1:5", "2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1::"]) {
    assert.equal(clientKey(ip(other)), key, other);
  }
  assert.notEqual(clientKey(ip("2001:db8:1:1::2")), key);
  assert.notEqual(clientKey(ip("2001:db8:2::2")), key);
});

Deno.test("clientKey() honours the configured IPv6 prefix length", () => {
  assert.equal(clientKey(ip("2001:db8:1:ab::2"), 48), "2001:db8:1::/48");
  assert.equal(clientKey(ip("2001:db8:1:ab::2"), 56), "2001:db8:1::/56");
  assert.equal(clientKey(ip("2001:db8:1:ab::2"), 128), "2001:db8:1:ab::2/128");
  assert.notEqual(clientKey(ip("2001:db8:1::2"), 128), clientKey(ip("2001:db8:1::3"), 128));
  assert.throws(() => clientKey(ip("2001:db8::1"), 129), /Cannot key client/);
  assert.throws(() => clientKey(ip("2001:db8::1"), 64.5), /Cannot key client/);
});

Deno.test("clientKey() keys IPv4 by the address, IPv4-mapped IPv6 as the IPv4 it stands for", () => {
  assert.equal(clientKey(ip("192.0.2.3")), "192.0.2.3");
  assert.notEqual(clientKey(ip("192.0.2.3")), clientKey(ip("192.0.2.4")));
  assert.equal(clientKey(ip("::ffff:192.0.2.3")), "192.0.2.3");
  // Not folded into one /64 with every other IPv4 client.
  assert.notEqual(clientKey(ip("::ffff:192.0.2.4")), clientKey(ip("::ffff:192.0.2.3")));
});
