import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { parseCidr } from "../../net/cidr.ts";
import {
  chooseBindAddress,
  hostInterfaces,
  hostRoutes,
  type InterfaceAddress,
  parseIpv4Routes,
  parseIpv6Routes,
} from "./_bind_address.ts";

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

const PROC_ROUTE = [
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
  "up0\t00000000\t026433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0",
  "down0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  "up0\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  "up0\t007100CB\t026433C6\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  "up0\t000000CB\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0",
].join("\n");

const PROC_IPV6_ROUTE = [
  "20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001   down0",
  "20010db8000200000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     up0",
  "20010db8000300000000000000000000 40 00000000000000000000000000000000 00 20010db8000200000000000000000002 00000400 00000002 00000000 00000003     up0",
  "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000002 00000000 00000003     up0",
  "20010db8000200000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     up0",
  "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo",
].join("\n");

/** The gateway of the e2e topology: the client on `down0`, the servers behind `up0`. */
const NAMED: InterfaceAddress[] = [
  ["lo", "127.0.0.1", "127.0.0.0/8"],
  ["lo", "::1", "::1/128"],
  ["down0", "192.0.2.1", "192.0.2.0/24"],
  ["down0", "2001:db8:1::1", "2001:db8:1::/64"],
  ["up0", "198.51.100.1", "198.51.100.0/24"],
  ["up0", "2001:db8:2::1", "2001:db8:2::/64"],
].map(([name, address, network]) => ({
  name: name!,
  address: parseIp(address!)!,
  network: parseCidr(network!),
}));

Deno.test("parseIpv4Routes() and parseIpv6Routes() read the kernel's tables, rejects and locals left out", () => {
  const v4 = parseIpv4Routes(PROC_ROUTE);
  assert.equal(v4.length, 4);
  assert.deepEqual(v4[0], {
    destination: parseCidr("0.0.0.0/0"),
    via: ip("198.51.100.2"),
    device: "up0",
    metric: 0,
  });
  assert.deepEqual(v4[3]!.destination, parseCidr("203.0.113.0/24"));
  const v6 = parseIpv6Routes(PROC_IPV6_ROUTE);
  assert.equal(v6.length, 4);
  assert.deepEqual(v6[2], {
    destination: parseCidr("2001:db8:3::/64"),
    via: ip("2001:db8:2::2"),
    device: "up0",
    metric: 0x400,
  });
  assert.deepEqual(parseIpv4Routes("garbage\nx y z"), []);
});

Deno.test("chooseBindAddress() announces the route's source towards a peer behind another link", () => {
  const routes4 = parseIpv4Routes(PROC_ROUTE);
  const routes6 = parseIpv6Routes(PROC_IPV6_ROUTE);
  const reached = ip("192.0.2.1");
  const pick = (family: 4 | 6, peer: string | null) =>
    chooseBindAddress(family, {
      peer: peer === null ? null : ip(peer),
      reached,
      interfaces: NAMED,
      routes: family === 4 ? routes4 : routes6,
    });
  // Routed peers: the source towards them, not the address the client reached.
  assert.deepEqual(pick(4, "203.0.113.5"), ip("198.51.100.1"));
  assert.deepEqual(pick(6, "2001:db8:3::5"), ip("2001:db8:2::1"));
  // DST.ADDR all zeros: the source towards the default route.
  assert.deepEqual(pick(4, null), ip("198.51.100.1"));
  assert.deepEqual(pick(6, null), ip("2001:db8:2::1"));
  // On link, loopback and own addresses are unchanged.
  assert.deepEqual(pick(4, "192.0.2.2"), ip("192.0.2.1"));
  assert.deepEqual(pick(4, "127.0.0.1"), ip("127.0.0.1"));
  assert.deepEqual(pick(6, "2001:db8:1::1"), ip("2001:db8:1::1"));
  // No route at all: the old fallbacks.
  assert.deepEqual(
    chooseBindAddress(4, { peer: ip("203.0.113.5"), reached, interfaces: NAMED, routes: [] }),
    reached,
  );
});

Deno.test("hostRoutes() reads this host's tables", () => {
  // Linux always has a route for the loopback-free main table's links, or none at all.
  let text = "";
  try {
    text = Deno.readTextFileSync("/proc/net/route");
  } catch { /* not Linux */ }
  assert.equal(hostRoutes(4).length, parseIpv4Routes(text).length);
  for (const family of [4, 6] as const) {
    for (const route of hostRoutes(family)) {
      assert.equal(route.destination.network.family, family);
    }
  }
});
