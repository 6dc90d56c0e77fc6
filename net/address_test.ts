import assert from "node:assert/strict";
import {
  endpointFromNetAddr,
  formatEndpoint,
  formatIp,
  type IpAddress,
  isUnspecified,
  parseIp,
  parseIpv4,
  parseIpv6,
  sameIp,
  toHostname,
  unmapIpv4,
  unspecified,
} from "./address.ts";

function v4(...bytes: number[]): IpAddress {
  return { family: 4, bytes: Uint8Array.from(bytes) };
}

/** Builds an IPv6 address from eight 16-bit groups. */
function v6(...groups: number[]): IpAddress {
  assert.equal(groups.length, 8);
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return { family: 6, bytes };
}

Deno.test("parseIpv4() parses dotted quads into network-order bytes", () => {
  assert.deepEqual(parseIpv4("192.0.2.1"), v4(192, 0, 2, 1));
  assert.deepEqual(parseIpv4("0.0.0.0"), v4(0, 0, 0, 0));
  assert.deepEqual(parseIpv4("255.255.255.255"), v4(255, 255, 255, 255));
  assert.deepEqual(parseIpv4("10.199.249.100"), v4(10, 199, 249, 100));
});

Deno.test("parseIpv4() rejects octal-looking parts, out-of-range parts and short forms", () => {
  for (
    const text of [
      "01.2.3.4",
      "1.2.3.04",
      "00.0.0.0",
      "0x1.2.3.4",
      "256.0.0.1",
      "1.2.3.256",
      "1.2.3.300",
      "256",
      "1",
      "1.2",
      "1.2.3",
      "1.2.3.4.5",
      "",
      "...",
      "1..3.4",
      "1.2.3.",
      ".1.2.3",
      " 1.2.3.4",
      "1.2.3.4 ",
      "+1.2.3.4",
      "-1.2.3.4",
      "1.2.3.4/32",
      "a.b.c.d",
      "١.٢.٣.٤",
    ]
  ) {
    assert.equal(parseIpv4(text), null, text);
  }
});

Deno.test("parseIpv6() parses every RFC 4291 text form", () => {
  const cases: [string, IpAddress][] = [
    ["2001:db8:0:0:1:0:0:1", v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)],
    ["2001:0db8:0000:0000:0001:0000:0000:0001", v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)],
    ["2001:DB8::1", v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)],
    ["::", v6(0, 0, 0, 0, 0, 0, 0, 0)],
    ["::1", v6(0, 0, 0, 0, 0, 0, 0, 1)],
    ["1::", v6(1, 0, 0, 0, 0, 0, 0, 0)],
    ["fe80::", v6(0xfe80, 0, 0, 0, 0, 0, 0, 0)],
    ["1:2:3:4:5:6:7::", v6(1, 2, 3, 4, 5, 6, 7, 0)],
    ["::2:3:4:5:6:7:8", v6(0, 2, 3, 4, 5, 6, 7, 8)],
    ["1::8", v6(1, 0, 0, 0, 0, 0, 0, 8)],
    ["1:2:3::6:7:8", v6(1, 2, 3, 0, 0, 6, 7, 8)],
    ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", v6(...new Array<number>(8).fill(0xffff))],
    ["::ffff:192.0.2.1", v6(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201)],
    ["::192.0.2.1", v6(0, 0, 0, 0, 0, 0, 0xc000, 0x201)],
    ["64:ff9b::198.51.100.7", v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc633, 0x6407)],
    ["1:2:3:4:5:6:1.2.3.4", v6(1, 2, 3, 4, 5, 6, 0x102, 0x304)],
    ["1:2:3:4:5::1.2.3.4", v6(1, 2, 3, 4, 5, 0, 0x102, 0x304)],
    [
      "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
      v6(...new Array<number>(8).fill(0xffff)),
    ],
  ];
  for (const [text, expected] of cases) assert.deepEqual(parseIpv6(text), expected, text);
});

Deno.test("parseIpv6() rejects malformed literals, zone ids and bad embedded quads", () => {
  for (
    const text of [
      "",
      ":",
      ":::",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "1::2::3",
      "::1::",
      ":1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7:8:",
      ":1::2",
      "1::2:",
      "12345::",
      "g::1",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3",
      "::01.2.3.4",
      "::256.1.1.1",
      "::1.2.3.4:5",
      "::1.2.3.4.5",
      "fe80::1%eth0",
      "fe80::1%1",
      "[::1]",
      " ::1",
      "::1 ",
      "1.2.3.4",
    ]
  ) {
    assert.equal(parseIpv6(text), null, text);
  }
});

// RFC 4291 §2.2 (3): the dotted quad is "the four low-order 8-bit pieces", so it can only
// come last. Embedding it before `::` puts it in the middle of the address.
Deno.test("parseIpv6() rejects a dotted quad that is not the last 32 bits", () => {
  assert.equal(parseIpv6("1.2.3.4::"), null);
  assert.equal(parseIpv6("1:2:3:4:5:1.2.3.4::"), null);
  assert.equal(parseIpv6("1.2.3.4::1"), null);
});

Deno.test("parseIp() parses both families, with or without brackets around IPv6", () => {
  assert.deepEqual(parseIp("192.0.2.1"), v4(192, 0, 2, 1));
  assert.deepEqual(parseIp("2001:db8::1"), v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(parseIp("[2001:db8::1]"), v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
  assert.deepEqual(parseIp("[::]"), v6(0, 0, 0, 0, 0, 0, 0, 0));
  assert.deepEqual(parseIp("[::ffff:1.2.3.4]"), v6(0, 0, 0, 0, 0, 0xffff, 0x102, 0x304));
});

Deno.test("parseIp() returns null for names, half brackets and bracketed junk", () => {
  for (
    const text of [
      "",
      "example.com",
      "localhost",
      "[::1",
      "::1]",
      "[[::1]]",
      "[]",
      "[fe80::1%eth0]",
      "[::1]:80",
      "1.2.3.4:80",
      "01.2.3.4",
    ]
  ) {
    assert.equal(parseIp(text), null, text);
  }
});

Deno.test("formatIp() formats IPv4 as a dotted quad", () => {
  assert.equal(formatIp(v4(192, 0, 2, 1)), "192.0.2.1");
  assert.equal(formatIp(v4(0, 0, 0, 0)), "0.0.0.0");
  assert.equal(formatIp(v4(255, 255, 255, 255)), "255.255.255.255");
});

Deno.test("formatIp() follows RFC 5952 for IPv6", () => {
  const cases: [IpAddress, string][] = [
    // §4.1 leading zeros dropped; §4.3 lower case.
    [v6(0x2001, 0xdb8, 0, 0, 0, 0, 0xabcd, 0xef), "2001:db8::abcd:ef"],
    // §4.2.1 the longest run is compressed.
    [v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 0), "2001:db8:0:0:1::"],
    [v6(0x2001, 0, 0, 1, 0, 0, 0, 1), "2001:0:0:1::1"],
    // §4.2.2 a single zero group is not compressed.
    [v6(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), "2001:db8:0:1:1:1:1:1"],
    [v6(1, 2, 3, 4, 5, 6, 7, 0), "1:2:3:4:5:6:7:0"],
    [v6(0, 2, 3, 4, 5, 6, 7, 8), "0:2:3:4:5:6:7:8"],
    // §4.2.3 ties go to the first run.
    [v6(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1"],
    [v6(1, 0, 0, 2, 3, 0, 0, 4), "1::2:3:0:0:4"],
    // Edges.
    [v6(0, 0, 0, 0, 0, 0, 0, 0), "::"],
    [v6(0, 0, 0, 0, 0, 0, 0, 1), "::1"],
    [v6(1, 0, 0, 0, 0, 0, 0, 0), "1::"],
    [v6(0, 0, 0, 0, 0, 0, 0xffff, 0xffff), "::ffff:ffff"],
    [v6(0xfe80, 0, 0, 0, 0, 0, 0, 1), "fe80::1"],
    [v6(...new Array<number>(8).fill(0xabcd)), "abcd:abcd:abcd:abcd:abcd:abcd:abcd:abcd"],
  ];
  for (const [address, text] of cases) assert.equal(formatIp(address), text, text);
});

Deno.test("formatIp() and parseIp() round-trip canonical and non-canonical forms", () => {
  for (
    const text of [
      "0.0.0.0",
      "127.0.0.1",
      "203.0.113.255",
      "::",
      "::1",
      "1::",
      "2001:db8::1",
      "2001:db8:0:1:1:1:1:1",
      "2001:db8::1:0:0:1",
      "fe80::1:2",
      "1:2:3:4:5:6:7:8",
    ]
  ) {
    assert.equal(formatIp(parseIp(text)!), text);
  }
  const cases: [string, string][] = [
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(formatIp(parseIp(input)!), canonical, input);
    assert.deepEqual(parseIp(canonical), parseIp(input), input);
  }
  // Every byte pattern of a random sample survives format → parse.
  for (let i = 0; i < 200; i++) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    // Zero out random groups so that runs of zeros of all lengths occur.
    for (let g = 0; g < 8; g++) {
      if (Math.random() < 0.5) bytes[g * 2] = bytes[g * 2 + 1] = 0;
    }
    const address: IpAddress = { family: 6, bytes };
    assert.deepEqual(parseIp(formatIp(address)), address);
  }
});

Deno.test("toHostname() formats without brackets", () => {
  assert.equal(toHostname(v6(0, 0, 0, 0, 0, 0, 0, 1)), "::1");
  assert.equal(toHostname(v4(127, 0, 0, 1)), "127.0.0.1");
});

Deno.test("unmapIpv4() unwraps ::ffff:a.b.c.d and leaves everything else alone", () => {
  assert.deepEqual(unmapIpv4(parseIp("::ffff:192.0.2.1")!), v4(192, 0, 2, 1));
  assert.deepEqual(unmapIpv4(parseIp("::ffff:0.0.0.0")!), v4(0, 0, 0, 0));
  const keep = [
    "::1",
    "::",
    "::192.0.2.1", // IPv4-compatible, not mapped
    "::fffe:192.0.2.1",
    "1::ffff:192.0.2.1",
    "64:ff9b::192.0.2.1",
    "::ffff:0:192.0.2.1",
  ];
  for (const text of keep) {
    const address = parseIp(text)!;
    assert.equal(unmapIpv4(address), address, text);
  }
  const plain = v4(10, 0, 0, 1);
  assert.equal(unmapIpv4(plain), plain);
});

Deno.test("unmapIpv4() returns bytes independent of the input", () => {
  const mapped = parseIp("::ffff:10.0.0.1")!;
  const out = unmapIpv4(mapped);
  mapped.bytes[12] = 99;
  assert.deepEqual(out, v4(10, 0, 0, 1));
});

Deno.test("sameIp() compares family and bytes", () => {
  assert.equal(sameIp(v4(1, 2, 3, 4), v4(1, 2, 3, 4)), true);
  assert.equal(sameIp(v4(1, 2, 3, 4), v4(1, 2, 3, 5)), false);
  assert.equal(sameIp(parseIp("::1")!, parseIp("0::1")!), true);
  assert.equal(sameIp(parseIp("::1")!, parseIp("::2")!), false);
  assert.equal(sameIp(parseIp("::ffff:1.2.3.4")!, v4(1, 2, 3, 4)), false);
  assert.equal(sameIp(unspecified(4), unspecified(6)), false);
});

Deno.test("isUnspecified() is true only for 0.0.0.0 and ::", () => {
  assert.equal(isUnspecified(v4(0, 0, 0, 0)), true);
  assert.equal(isUnspecified(parseIp("::")!), true);
  assert.equal(isUnspecified(unspecified(4)), true);
  assert.equal(isUnspecified(unspecified(6)), true);
  assert.equal(isUnspecified(v4(0, 0, 0, 1)), false);
  assert.equal(isUnspecified(v4(1, 0, 0, 0)), false);
  assert.equal(isUnspecified(parseIp("::1")!), false);
  assert.equal(isUnspecified(parseIp("8000::")!), false);
});

Deno.test("unspecified() returns the zero address of each family", () => {
  assert.deepEqual(unspecified(4), v4(0, 0, 0, 0));
  assert.deepEqual(unspecified(6), v6(0, 0, 0, 0, 0, 0, 0, 0));
  // Fresh bytes each time: callers may not corrupt a shared constant.
  assert.notEqual(unspecified(4).bytes, unspecified(4).bytes);
});

Deno.test("formatEndpoint() brackets IPv6 only", () => {
  assert.equal(formatEndpoint({ address: v4(192, 0, 2, 1), port: 80 }), "192.0.2.1:80");
  assert.equal(
    formatEndpoint({ address: parseIp("2001:db8::1")!, port: 443 }),
    "[2001:db8::1]:443",
  );
  assert.equal(formatEndpoint({ address: parseIp("::")!, port: 0 }), "[::]:0");
  assert.equal(formatEndpoint({ address: v4(0, 0, 0, 0), port: 65535 }), "0.0.0.0:65535");
});

Deno.test("endpointFromNetAddr() reads both families and unmaps IPv4-mapped addresses", () => {
  assert.deepEqual(
    endpointFromNetAddr({ transport: "tcp", hostname: "192.0.2.1", port: 1080 }),
    { address: v4(192, 0, 2, 1), port: 1080 },
  );
  assert.deepEqual(
    endpointFromNetAddr({ transport: "udp", hostname: "2001:db8::1", port: 53 }),
    { address: v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), port: 53 },
  );
  assert.deepEqual(
    endpointFromNetAddr({ transport: "tcp", hostname: "::ffff:127.0.0.1", port: 4000 }),
    { address: v4(127, 0, 0, 1), port: 4000 },
  );
});

Deno.test("endpointFromNetAddr() throws TypeError for non-IP transports and names", () => {
  assert.throws(
    () => endpointFromNetAddr({ transport: "unix", path: "/tmp/sock" }),
    TypeError,
  );
  assert.throws(
    () => endpointFromNetAddr({ transport: "tcp", hostname: "localhost", port: 1 }),
    TypeError,
  );
});

Deno.test("endpointFromNetAddr() reports an IPv4 client of a dual-stack listener as IPv4", async () => {
  using listener = Deno.listen({ hostname: "::", port: 0 });
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using accepted = await listener.accept();
  const remote = endpointFromNetAddr(accepted.remoteAddr);
  assert.deepEqual(remote.address, v4(127, 0, 0, 1));
  assert.equal(remote.port, client.localAddr.port);
  assert.deepEqual(endpointFromNetAddr(client.remoteAddr), {
    address: v4(127, 0, 0, 1),
    port: listener.addr.port,
  });
});
