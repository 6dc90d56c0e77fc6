import assert from "node:assert/strict";
import { type IpAddress, parseIp } from "./address.ts";
import {
  type Cidr,
  cidrContains,
  cidrWithin,
  formatCidr,
  HOST_LOCAL_CIDRS,
  isHostLocal,
  isLoopback,
  isMulticastOrBroadcast,
  parseCidr,
} from "./cidr.ts";

function ip(text: string): IpAddress {
  const address = parseIp(text);
  assert.ok(address, text);
  return address;
}

function contains(cidr: string, address: string): boolean {
  return cidrContains(parseCidr(cidr), ip(address));
}

Deno.test("parseCidr() parses prefixes of both families", () => {
  assert.deepEqual(parseCidr("192.0.2.0/24"), { network: ip("192.0.2.0"), prefixLength: 24 });
  assert.deepEqual(parseCidr("2001:db8::/32"), { network: ip("2001:db8::"), prefixLength: 32 });
  assert.deepEqual(parseCidr("[2001:db8::]/48"), { network: ip("2001:db8::"), prefixLength: 48 });
});

Deno.test("parseCidr() reads a bare address as a /32 or /128", () => {
  assert.deepEqual(parseCidr("192.0.2.7"), { network: ip("192.0.2.7"), prefixLength: 32 });
  assert.deepEqual(parseCidr("2001:db8::7"), { network: ip("2001:db8::7"), prefixLength: 128 });
  assert.deepEqual(parseCidr("[::1]"), { network: ip("::1"), prefixLength: 128 });
});

Deno.test("parseCidr() accepts /0 and the full lengths", () => {
  assert.deepEqual(parseCidr("0.0.0.0/0"), { network: ip("0.0.0.0"), prefixLength: 0 });
  assert.deepEqual(parseCidr("::/0"), { network: ip("::"), prefixLength: 0 });
  assert.deepEqual(parseCidr("1.2.3.4/32"), { network: ip("1.2.3.4"), prefixLength: 32 });
  assert.deepEqual(parseCidr("::1/128"), { network: ip("::1"), prefixLength: 128 });
});

Deno.test("parseCidr() clears host bits", () => {
  const cases: [string, string, number][] = [
    ["192.0.2.77/24", "192.0.2.0", 24],
    ["255.255.255.255/0", "0.0.0.0", 0],
    ["255.255.255.255/1", "128.0.0.0", 1],
    ["255.255.255.255/7", "254.0.0.0", 7],
    ["255.255.255.255/9", "255.128.0.0", 9],
    ["10.1.2.3/31", "10.1.2.2", 31],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/0", "::", 0],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/1", "8000::", 1],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 127],
    ["2001:db8:abcd:1234::1/52", "2001:db8:abcd:1000::", 52],
    ["::ffff:127.1.2.3/104", "127.0.0.0", 8],
  ];
  for (const [text, network, prefixLength] of cases) {
    assert.deepEqual(parseCidr(text), { network: ip(network), prefixLength }, text);
  }
});

Deno.test("parseCidr() does not alias the parsed address bytes", () => {
  const a = parseCidr("10.0.0.0/8");
  const b = parseCidr("10.0.0.0/8");
  a.network.bytes[0] = 11;
  assert.deepEqual(b.network, ip("10.0.0.0"));
});

Deno.test("parseCidr() throws RangeError for bad addresses and lengths", () => {
  for (
    const text of [
      "",
      "/",
      "/8",
      "1.2.3.4/",
      "1.2.3.4/33",
      "1.2.3.4/-1",
      "1.2.3.4/+8",
      "1.2.3.4/ 8",
      "1.2.3.4/8 ",
      "1.2.3.4/8.0",
      "1.2.3.4/1e1",
      "1.2.3.4/0x8",
      "1.2.3.4/8/8",
      "1.2.3.4//8",
      "1.2.3.4/0032",
      "::/129",
      "::1/200",
      "::1/1000",
      "2001:db8::/",
      "[::1/128]",
      "example.com/8",
      "01.2.3.4/8",
      "1.2.3/24",
      "fe80::1%eth0/64",
    ]
  ) {
    assert.throws(() => parseCidr(text), RangeError, text);
  }
});

Deno.test("parseCidr() never reads a zero-padded length as octal", () => {
  // Strict parsers (Go's netip) reject leading zeros; if accepted, it must be decimal.
  for (const [text, decimal] of [["10.0.0.0/010", 10], ["10.0.0.0/08", 8]] as const) {
    let parsed: Cidr | undefined;
    try {
      parsed = parseCidr(text);
    } catch (error) {
      assert.ok(error instanceof RangeError, text);
      continue;
    }
    assert.equal(parsed.prefixLength, decimal, text);
  }
});

Deno.test("cidrContains() matches addresses inside the prefix only", () => {
  assert.equal(contains("192.0.2.0/24", "192.0.2.0"), true);
  assert.equal(contains("192.0.2.0/24", "192.0.2.255"), true);
  assert.equal(contains("192.0.2.0/24", "192.0.3.0"), false);
  assert.equal(contains("192.0.2.0/24", "192.0.1.255"), false);
  assert.equal(contains("192.0.2.7", "192.0.2.7"), true);
  assert.equal(contains("192.0.2.7", "192.0.2.8"), false);
  assert.equal(contains("2001:db8::/32", "2001:db8:ffff::1"), true);
  assert.equal(contains("2001:db8::/32", "2001:db9::1"), false);
  assert.equal(contains("::1/128", "::1"), true);
  assert.equal(contains("::1/128", "::"), false);
});

Deno.test("cidrContains() handles prefix lengths that split a byte", () => {
  // /1
  assert.equal(contains("128.0.0.0/1", "128.0.0.0"), true);
  assert.equal(contains("128.0.0.0/1", "255.255.255.255"), true);
  assert.equal(contains("128.0.0.0/1", "127.255.255.255"), false);
  assert.equal(contains("0.0.0.0/1", "127.255.255.255"), true);
  assert.equal(contains("0.0.0.0/1", "128.0.0.0"), false);
  // /7: 10.0.0.0/7 is 10.0.0.0-11.255.255.255
  assert.equal(contains("10.0.0.0/7", "10.0.0.0"), true);
  assert.equal(contains("10.0.0.0/7", "11.255.255.255"), true);
  assert.equal(contains("10.0.0.0/7", "9.255.255.255"), false);
  assert.equal(contains("10.0.0.0/7", "12.0.0.0"), false);
  // /9: 10.128.0.0/9 is 10.128.0.0-10.255.255.255
  assert.equal(contains("10.128.0.0/9", "10.128.0.0"), true);
  assert.equal(contains("10.128.0.0/9", "10.255.255.255"), true);
  assert.equal(contains("10.128.0.0/9", "10.127.255.255"), false);
  assert.equal(contains("10.128.0.0/9", "11.128.0.0"), false);
  // /127
  assert.equal(contains("2001:db8::/127", "2001:db8::"), true);
  assert.equal(contains("2001:db8::/127", "2001:db8::1"), true);
  assert.equal(contains("2001:db8::/127", "2001:db8::2"), false);
  assert.equal(contains("2001:db8::2/127", "2001:db8::3"), true);
  // /65
  assert.equal(contains("2001:db8:0:0:8000::/65", "2001:db8::ffff:0:0:1"), true);
  assert.equal(contains("2001:db8:0:0:8000::/65", "2001:db8::7fff:0:0:1"), false);
  // /31
  assert.equal(contains("10.0.0.2/31", "10.0.0.3"), true);
  assert.equal(contains("10.0.0.2/31", "10.0.0.4"), false);
});

Deno.test("cidrContains() with /0 matches every address of the family only", () => {
  assert.equal(contains("0.0.0.0/0", "255.255.255.255"), true);
  assert.equal(contains("0.0.0.0/0", "0.0.0.0"), true);
  assert.equal(contains("::/0", "ffff::1"), true);
  assert.equal(contains("0.0.0.0/0", "::1"), false);
  assert.equal(contains("::/0", "1.2.3.4"), false);
});

Deno.test("parseCidr() reads an IPv4-mapped prefix of /96 or longer as the IPv4 prefix", () => {
  const cases: [string, string][] = [
    ["::ffff:10.0.0.0/104", "10.0.0.0/8"],
    ["::ffff:0:0/96", "0.0.0.0/0"],
    ["[::ffff:192.0.2.1]", "192.0.2.1/32"],
    ["::ffff:c633:6400/120", "198.51.100.0/24"],
    // Shorter prefixes reach beyond the mapped range: they stay IPv6.
    ["::ffff:0:0/95", "::fffe:0:0/95"],
    ["::/96", "::/96"],
  ];
  for (const [text, expected] of cases) assert.equal(formatCidr(parseCidr(text)), expected, text);
});

Deno.test("cidrContains() matches IPv4-mapped addresses as IPv4, never across families", () => {
  // One IPv4 destination, however written: an IPv4 rule holds for the mapped form.
  assert.equal(contains("127.0.0.0/8", "::ffff:127.0.0.1"), true);
  assert.equal(contains("10.0.0.0/8", "::ffff:10.1.2.3"), true);
  assert.equal(contains("::ffff:127.0.0.0/104", "127.0.0.1"), true);
  assert.equal(contains("::ffff:127.0.0.0/104", "::ffff:127.0.0.1"), true);
  assert.equal(contains("10.0.0.0/8", "::ffff:11.1.2.3"), false);
  // An IPv6 prefix matches IPv6 destinations only; a mapped one is IPv4.
  assert.equal(contains("::/0", "::ffff:10.1.2.3"), false);
  assert.equal(contains("::/96", "0.0.0.1"), false);
  assert.equal(contains("::/96", "::1"), true);
  // Near misses of the mapped form are IPv6.
  assert.equal(contains("10.0.0.0/8", "::fffe:10.1.2.3"), false);
  assert.equal(contains("10.0.0.0/8", "1::ffff:10.1.2.3"), false);
  assert.equal(contains("10.0.0.0/8", "::10.1.2.3"), false);
});

Deno.test("cidrWithin() is true when one prefix lies inside another", () => {
  const within = (inner: string, outer: string) => cidrWithin(parseCidr(inner), parseCidr(outer));
  assert.equal(within("127.0.0.1/32", "127.0.0.0/8"), true);
  assert.equal(within("127.0.0.0/8", "127.0.0.0/8"), true);
  assert.equal(within("127.0.0.0/7", "127.0.0.0/8"), false);
  assert.equal(within("0.0.0.0/0", "127.0.0.0/8"), false);
  assert.equal(within("::1/128", "::1/128"), true);
  assert.equal(within("::/0", "::1/128"), false);
  assert.equal(within("::ffff:127.0.0.1/128", "127.0.0.0/8"), true);
  assert.equal(within("::1/128", "127.0.0.0/8"), false);
});

Deno.test("cidrContains() agrees with a bit-by-bit reference on random inputs", () => {
  const bit = (bytes: Uint8Array, i: number) => (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
  for (let i = 0; i < 500; i++) {
    const family = i % 2 === 0 ? 4 : 6;
    const size = family === 4 ? 4 : 16;
    const base = crypto.getRandomValues(new Uint8Array(size));
    const prefixLength = Math.floor(Math.random() * (size * 8 + 1));
    const cidr: Cidr = parseCidr(`${formatBytes(family, base)}/${prefixLength}`);
    // Flip one random bit of the base: inside iff the bit lies past the prefix.
    const probe = base.slice();
    const flipped = Math.floor(Math.random() * size * 8);
    probe[flipped >> 3]! ^= 0x80 >> (flipped & 7);
    let expected = true;
    for (let b = 0; b < prefixLength; b++) if (bit(probe, b) !== bit(base, b)) expected = false;
    assert.equal(cidrContains(cidr, { family, bytes: probe }), expected);
    assert.equal(cidrContains(cidr, { family, bytes: base }), true);
  }
});

function formatBytes(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return [...bytes].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

Deno.test("formatCidr() prints network/length and round-trips through parseCidr()", () => {
  assert.equal(formatCidr(parseCidr("192.0.2.77/24")), "192.0.2.0/24");
  assert.equal(formatCidr(parseCidr("2001:DB8:0:0::1/64")), "2001:db8::/64");
  assert.equal(formatCidr(parseCidr("::1")), "::1/128");
  assert.equal(formatCidr(parseCidr("10.0.0.1")), "10.0.0.1/32");
  for (const text of ["0.0.0.0/0", "::/0", "10.128.0.0/9", "fe80::/10"]) {
    assert.equal(formatCidr(parseCidr(text)), text);
  }
});

Deno.test("HOST_LOCAL_CIDRS covers loopback and this-host addresses of both families", () => {
  assert.deepEqual(
    HOST_LOCAL_CIDRS.map(formatCidr),
    ["0.0.0.0/8", "127.0.0.0/8", "::/128", "::1/128"],
  );
});

Deno.test("isHostLocal() is true for every form of a loopback or this-host address", () => {
  for (
    const text of [
      "127.0.0.1",
      "127.255.255.254",
      "0.0.0.0",
      "0.1.2.3",
      "0.255.255.255",
      "::1",
      "::",
      "::ffff:127.0.0.1",
      "::ffff:0.0.0.0",
      "::ffff:0.1.2.3",
      "::ffff:7f00:1",
      "[::ffff:127.9.9.9]",
    ]
  ) {
    assert.equal(isHostLocal(ip(text)), true, text);
  }
  for (
    const text of [
      "128.0.0.1",
      "126.255.255.255",
      "1.0.0.0",
      "::2",
      "::ffff:128.0.0.1",
      "::ffff:1.0.0.0",
      "fe80::1",
      "::127.0.0.1",
      "::ffff:0:127.0.0.1",
      "2001:db8::1",
    ]
  ) {
    assert.equal(isHostLocal(ip(text)), false, text);
  }
});

Deno.test("isLoopback() is true for 127.0.0.0/8 and ::1 in any form, not for this-host", () => {
  for (const text of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopback(ip(text)), true, text);
  }
  for (const text of ["0.0.0.0", "::", "::ffff:0.0.0.0", "192.0.2.1", "2001:db8::1", "::2"]) {
    assert.equal(isLoopback(ip(text)), false, text);
  }
});

Deno.test("isMulticastOrBroadcast() is true for multicast and limited broadcast in any form", () => {
  for (
    const text of [
      "224.0.0.1",
      "239.255.255.250",
      "255.255.255.255",
      "::ffff:224.0.0.251",
      "::ffff:255.255.255.255",
      "ff02::1",
      "ff05::1:3",
      "ff0e::101",
    ]
  ) {
    assert.equal(isMulticastOrBroadcast(parseIp(text)!), true, text);
  }
  for (
    const text of ["223.255.255.255", "240.0.0.1", "255.255.255.254", "fe80::1", "2001:db8::1"]
  ) {
    assert.equal(isMulticastOrBroadcast(parseIp(text)!), false, text);
  }
});
