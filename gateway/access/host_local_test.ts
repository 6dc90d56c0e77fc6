import assert from "node:assert/strict";
import { type IpAddress, parseIp } from "../../net/address.ts";
import { GatewayHost, interfaceAddresses } from "./host_local.ts";

function ip(text: string): IpAddress {
  const address = parseIp(text);
  assert.ok(address, text);
  return address;
}

Deno.test("GatewayHost.isHostLocal() covers the ranges, interface and declared addresses", () => {
  const host = new GatewayHost({
    interfaces: () => [ip("127.0.0.1"), ip("192.0.2.1"), ip("2001:db8:1::1")],
    declared: [ip("203.0.113.5"), ip("0.0.0.0")],
  });
  for (
    const text of [
      "127.0.0.1",
      "0.0.0.0",
      "0.1.2.3",
      "::",
      "::1",
      "::ffff:0.0.0.0",
      "192.0.2.1",
      "::ffff:192.0.2.1",
      "2001:db8:1::1",
      "203.0.113.5",
    ]
  ) {
    assert.equal(host.isHostLocal(ip(text)), true, text);
  }
  for (const text of ["192.0.2.2", "2001:db8:1::2", "203.0.113.6", "198.51.100.2"]) {
    assert.equal(host.isHostLocal(ip(text)), false, text);
  }
});

Deno.test("GatewayHost re-reads the interfaces once the refresh interval has passed", () => {
  let now = 0;
  let addresses = [ip("192.0.2.1")];
  let reads = 0;
  const host = new GatewayHost({
    interfaces: () => (reads++, addresses),
    refreshMs: 1000,
    now: () => now,
  });
  assert.equal(host.isHostLocal(ip("192.0.2.1")), true);
  addresses = [ip("192.0.2.9")];
  now = 999;
  assert.equal(host.isHostLocal(ip("192.0.2.9")), false, "still the earlier reading");
  now = 1000;
  assert.equal(host.isHostLocal(ip("192.0.2.9")), true, "an address that came up later");
  assert.equal(host.isHostLocal(ip("192.0.2.1")), false, "one that went away");
  assert.equal(reads, 2);
});

Deno.test("GatewayHost keeps the ranges when the interfaces cannot be read", () => {
  const host = new GatewayHost({
    interfaces: () => {
      throw new Deno.errors.NotCapable("no --allow-sys");
    },
  });
  assert.equal(host.isHostLocal(ip("127.0.0.1")), true);
  assert.equal(host.isHostLocal(ip("192.0.2.1")), false);
});

Deno.test("GatewayHost.isOwnListener() matches exact, wildcard and 'this host' destinations", () => {
  const host = new GatewayHost({ interfaces: () => [ip("127.0.0.1"), ip("192.0.2.1")] });
  assert.equal(host.isOwnListener(ip("127.0.0.1"), 1080), false, "no listeners yet");
  host.listeners = [
    { address: ip("127.0.0.1"), port: 1080 },
    { address: ip("::"), port: 1081 },
  ];
  // Exact listener: its own address, and 0.0.0.0 / :: which Linux delivers to the host.
  assert.equal(host.isOwnListener(ip("127.0.0.1"), 1080), true);
  assert.equal(host.isOwnListener(ip("::ffff:127.0.0.1"), 1080), true);
  assert.equal(host.isOwnListener(ip("0.0.0.0"), 1080), true);
  assert.equal(host.isOwnListener(ip("::"), 1080), true);
  assert.equal(host.isOwnListener(ip("127.0.0.2"), 1080), false);
  assert.equal(host.isOwnListener(ip("127.0.0.1"), 1082), false);
  // Wildcard listener: every address of the host, either family.
  for (const text of ["192.0.2.1", "::ffff:192.0.2.1", "127.0.0.5", "::1", "0.0.0.0"]) {
    assert.equal(host.isOwnListener(ip(text), 1081), true, text);
  }
  assert.equal(host.isOwnListener(ip("192.0.2.2"), 1081), false);
});

Deno.test("interfaceAddresses() lists this host's loopback", () => {
  const addresses = interfaceAddresses();
  assert.ok(addresses.some((a) => a.family === 4 && a.bytes[0] === 127));
});
