import assert from "node:assert/strict";
import { type IpAddress, parseIp } from "./address.ts";
import { type Cidr, cidrContains, formatCidr, HOST_LOCAL_CIDRS, parseCidr } from "./cidr.ts";

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
    ["::ffff:127.1.2.3/104", "::ffff:127.0.0.0", 104],
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

Deno.test("cidrContains() never matches across families", () => {
  assert.equal(contains("127.0.0.0/8", "::ffff:127.0.0.1"), false);
  assert.equal(contains("::ffff:127.0.0.0/104", "127.0.0.1"), false);
  assert.equal(contains("::ffff:127.0.0.0/104", "::ffff:127.0.0.1"), true);
  assert.equal(contains("::/96", "0.0.0.1"), false);
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

Deno.test("HOST_LOCAL_CIDRS covers loopback and unspecified addresses of both families", () => {
  assert.deepEqual(
    HOST_LOCAL_CIDRS.map(formatCidr),
    ["127.0.0.0/8", "0.0.0.0/32", "::1/128", "::/128", "::ffff:7f00:0/104"],
  );
  const local = (text: string) => HOST_LOCAL_CIDRS.some((c) => cidrContains(c, ip(text)));
  for (
    const text of ["127.0.0.1", "127.255.255.254", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1"]
  ) {
    assert.equal(local(text), true, text);
  }
  for (
    const text of ["128.0.0.1", "126.255.255.255", "0.0.0.1", "::2", "::ffff:128.0.0.1", "fe80::1"]
  ) {
    assert.equal(local(text), false, text);
  }
});
