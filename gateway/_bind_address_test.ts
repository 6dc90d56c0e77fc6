import assert from "node:assert/strict";
import { parseIp } from "../net/address.ts";
import { parseCidr } from "../net/cidr.ts";
import { chooseBindAddress, hostInterfaces, type InterfaceAddress } from "./_bind_address.ts";

const GATEWAY: InterfaceAddress[] = [
  ["127.0.0.1", "127.0.0.0/8"],
  ["::1", "::1/128"],
  ["192.0.2.1", "192.0.2.0/24"],
  ["2001:db8:1::1", "2001:db8:1::/64"],
  ["198.51.100.1", "198.51.100.0/24"],
  ["2001:db8:2::1", "2001:db8:2::/64"],
].map(([address, network]) => ({ address: parseIp(address!)!, network: parseCidr(network!) }));

const ip = (text: string) => parseIp(text)!;

Deno.test("chooseBindAddress() picks the interface on the peer's link, in the peer's family", () => {
  const reached = ip("192.0.2.1");
  const pick = (peer: string, family: 4 | 6) =>
    chooseBindAddress(family, { peer: ip(peer), reached, interfaces: GATEWAY });
  assert.deepEqual(pick("2001:db8:2::2", 6), ip("2001:db8:2::1"));
  assert.deepEqual(pick("198.51.100.2", 4), ip("198.51.100.1"));
  assert.deepEqual(pick("::1", 6), ip("::1"));
  assert.deepEqual(pick("127.0.0.1", 4), ip("127.0.0.1"));
});

Deno.test("chooseBindAddress() falls back to the reached address, then a global one", () => {
  // A routed peer: the address the client reached, when it is of the family.
  assert.deepEqual(
    chooseBindAddress(4, {
      peer: ip("203.0.113.9"),
      reached: ip("192.0.2.1"),
      interfaces: GATEWAY,
    }),
    ip("192.0.2.1"),
  );
  // Of the other family: the first global address of the peer's family.
  assert.deepEqual(
    chooseBindAddress(6, {
      peer: ip("2001:db8:99::9"),
      reached: ip("192.0.2.1"),
      interfaces: GATEWAY,
    }),
    ip("2001:db8:1::1"),
  );
  // No peer (DST.ADDR all zeros): the reached address, unless it is loopback.
  assert.deepEqual(
    chooseBindAddress(6, { peer: null, reached: ip("2001:db8:1::1"), interfaces: GATEWAY }),
    ip("2001:db8:1::1"),
  );
  assert.deepEqual(
    chooseBindAddress(6, { peer: null, reached: ip("::1"), interfaces: GATEWAY }),
    ip("2001:db8:1::1"),
  );
  // No address of the family at all.
  const v4only = GATEWAY.filter((nic) => nic.address.family === 4);
  assert.equal(
    chooseBindAddress(6, {
      peer: ip("2001:db8:2::2"),
      reached: ip("192.0.2.1"),
      interfaces: v4only,
    }),
    null,
  );
});

Deno.test("hostInterfaces() lists loopback and no link-local IPv6", () => {
  const list = hostInterfaces();
  assert.ok(list.some((nic) => nic.address.family === 4 && nic.address.bytes[0] === 127));
  assert.ok(
    !list.some((nic) =>
      nic.address.family === 6 && nic.address.bytes[0] === 0xfe &&
      (nic.address.bytes[1]! & 0xc0) === 0x80
    ),
  );
});
